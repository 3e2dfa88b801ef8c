#!/bin/bash
# After run_in_domain.sh: early fusion for users who want the best model, not a pure encoder: the pool
# encoder's layer statistics and the eGeMAPS functionals in one logistic regression (--set fuse=egemaps).
cd /work/main
PY=/work/main/.venv/bin/python
while pgrep -f "ravdess_lrprobe/run.sh|ravdess_lrprobe/run_in_domain.sh" > /dev/null; do sleep 10; done
$PY -m experiments.layer_probe --manifest /work/runs/scaling/ravdess.csv --corpus ravdess \
    --work /work/runs/lrprobe/ravdess_fusion --set fuse=egemaps \
    --encoder pool-fused-egemaps=docs/results/baseline/ravdess_second_stage/pretrain/pool/encoder \
    --archive docs/results/baseline/ravdess_lrprobe_fusion
echo "== fusion done $(date)"
