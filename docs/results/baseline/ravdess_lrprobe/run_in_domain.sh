#!/bin/bash
# After run.sh: the same readout of issue 24's second-stage encoders (the pool encoder trained 600 more steps
# on each fold's training-speaker audio alone, energy,cluster or + acoustic; one encoder per fold, never
# having heard the fold's dev or test speakers). The pool and av grids are resumed (finished), so the archive
# holds all four encoders.
cd /work/main
PY=/work/main/.venv/bin/python

S=docs/results/baseline/ravdess_second_stage/pretrain
$PY -m experiments.layer_probe --manifest /work/runs/scaling/ravdess.csv --corpus ravdess \
    --work /work/runs/lrprobe/ravdess \
    --encoder pool=docs/results/baseline/ravdess_second_stage/pretrain/pool/encoder \
    --encoder av=docs/results/methods/run_c/pretrain/encoder \
    --encoder second=$S/{fold}/encoder --encoder second-acoustic=$S/acoustic_{fold}/encoder \
    --archive docs/results/baseline/ravdess_lrprobe
echo "== in-domain done $(date)"
