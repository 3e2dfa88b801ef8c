#!/bin/bash
# Issue 25 item 5 on this machine: pool extraction (scaling's prepare,extract), both labellings, both
# pretrainings side by side (one thread each), then RAVDESS cells, baseline and report. Resumable.
set -e
cd /work/main
PY=/work/main/.venv/bin/python
$PY -m experiments.scaling --work /work/runs/scaling --encoders cnn --steps prepare,extract
$PY -m experiments.au_downstream --work /work/runs/au5 --scaling /work/runs/scaling --steps label
for m in rules learned; do
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $PY -c "
import torch; torch.set_num_threads(1)
from pathlib import Path
from experiments.au_downstream import pretrain
pretrain(Path('/work/runs/au5'), '$m', 4.0)" > /work/runs/pretrain_$m.log 2>&1 &
done
wait
$PY -m experiments.au_downstream --work /work/runs/au5 --scaling /work/runs/scaling --steps cells,baseline,report \
  --fractions "${FRACTIONS:-0.1}" --archive /work/main/docs/results/face_emotion/downstream
