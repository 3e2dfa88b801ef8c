#!/bin/bash
# Early fusion with the larger encoder: cnn128's layer statistics and the eGeMAPS functionals in one logistic
# regression (--set fuse=egemaps), RAVDESS; archived beside the pool encoder's fusion cells.
cd /work/main
PY=/work/main/.venv/bin/python
$PY -m experiments.layer_probe --manifest /work/runs/scaling/ravdess.csv --corpus ravdess \
    --work /work/runs/lrprobe/ravdess_fusion --set fuse=egemaps \
    --encoder pool-fused-egemaps=docs/results/baseline/ravdess_second_stage/pretrain/pool/encoder \
    --encoder cnn128-fused-egemaps=docs/results/baseline/ravdess_lrprobe_cnn128/pretrain/encoder \
    --archive docs/results/baseline/ravdess_lrprobe_fusion
echo "== fusion cnn128 done $(date)"
