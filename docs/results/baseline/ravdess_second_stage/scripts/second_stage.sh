#!/bin/bash
# Issue 24, item 6 continued: a second pretraining stage on each fold's training files alone (continued,
# domain-adaptive pretraining) from the pool-only encoder, against that encoder, scratch and eGeMAPS on one
# machine. Stage 1: cnn, energy,cluster, 1,908 steps on the 6.1 h pool (lr 1e-3, the scaling recipe); stage 2:
# 600 steps (about 10 passes over a fold's ~960 files) at lr 3e-4, with energy,cluster (arm in_domain) or
# energy,cluster,acoustic (arm acoustic: the eGeMAPS descriptors regressed on the fold's own audio). Both
# second stages start from the same pool run (W2/pool links W/pool). Fractions 10% then 25%, 3 seeds, archived
# after each.
set -e
cd /work/main
PY=/work/main/.venv/bin/python
W=/work/runs/second
W2=/work/runs/second_acoustic
M=/work/runs/scaling/ravdess.csv
ARCHIVE=/work/main/docs/results/baseline/ravdess_second_stage
FT="--set epochs=20 --set patience=8 --set lr=0.001 --set encoder_lr_mult=1.0 --set max_seconds=3.0 --set batch_size=16 --set dev_speakers=2 --set num_workers=2 --set num_folds=4"
while pgrep -f "experiments.scaling --work" > /dev/null; do sleep 10; done
if [ ! -f $W/pool_labels/segments.parquet ]; then
  $PY -c "
from pathlib import Path
from experiments.scaling import label_pool
label_pool(Path('/work/runs/scaling/pool_extract'), 'energy,cluster', dest=Path('$W/pool_labels'))"
fi
echo "== pool labelled $(date)"
$PY -m experiments.in_domain --manifest $M --pool-labels $W/pool_labels --work $W/w --tasks energy,cluster \
  --steps 1908 --continue-steps 600 --continue-lr 3e-4 $FT
echo "== pretrained (energy,cluster second stage) $(date)"
mkdir -p $W2/w
[ -e $W2/w/pool ] || ln -s $W/w/pool $W2/w/pool
[ -e $W2/w/extract ] || ln -s $W/w/extract $W2/w/extract
$PY -m experiments.in_domain --manifest $M --pool-labels $W/pool_labels --work $W2/w --tasks energy,cluster \
  --steps 1908 --continue-steps 600 --continue-lr 3e-4 --continue-tasks energy,cluster,acoustic $FT
echo "== pretrained (acoustic second stage) $(date)"
for F in 0.1 0.1,0.25; do
  $PY -m experiments.in_domain_grid --work $W/grid --in-domain $W/w --variant acoustic=$W2/w --manifest $M \
    --tasks energy,cluster --fractions $F --seeds 0,1,2 --archive $ARCHIVE --name second-stage
  echo "== stage $F done $(date)"
done
