#!/bin/bash
# Issue 24 item 6 on this machine: RAVDESS folds' training-speaker audio added to the 6.1 h pool, audio-only
# tasks energy,cluster, one cnn pretraining per fold (1,908 steps: the pool's scaling schedule) and the
# pool-only twin; then 10% probe and fine-tuning cells, seed 0, scratch cells shared with /work/runs/au5.
set -e
cd /work/main
PY=/work/main/.venv/bin/python
W=/work/runs/indomain
M=/work/runs/scaling/ravdess.csv
FT="--set epochs=20 --set patience=8 --set lr=0.001 --set encoder_lr_mult=1.0 --set max_seconds=3.0 --set batch_size=16 --set dev_speakers=2 --set num_workers=2 --set num_folds=4"
while pgrep -f "from experiments.scaling import label_pool" > /dev/null; do sleep 10; done
if [ ! -f $W/pool_labels/segments.parquet ]; then
  $PY -c "
from pathlib import Path
from experiments.scaling import label_pool
label_pool(Path('/work/runs/scaling/pool_extract'), 'energy,cluster', dest=Path('$W/pool_labels'))"
fi
echo "== pool labelled $(date)"
$PY -m experiments.in_domain --manifest $M --pool-labels $W/pool_labels --work $W/w --tasks energy,cluster \
  --steps 1908 --pool-only $FT
echo "== pretrained $(date)"
# The au5 grid's scratch cells are the same models (cnn, folds, seed, subset, settings): linked, not retrained.
while pgrep -f au5b.sh > /dev/null; do sleep 30; done
$PY -m experiments.in_domain_grid --work $W/grid --in-domain $W/w --manifest $M --fractions 0.1 --seeds 0 \
  --scratch-from /work/runs/au5 --archive /work/main/docs/results/baseline/ravdess_in_domain
echo "== grid done $(date)"
