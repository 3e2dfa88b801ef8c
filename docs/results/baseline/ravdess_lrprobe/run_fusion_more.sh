#!/bin/bash
# Issue 24, the fusion rows left unmeasured: early fusion in the baseline's regression (--set fuse=...) on BAVED
# with eGeMAPS (pool and cnn128 encoders), then with ComParE's 6,373 functionals (pool encoder) on RAVDESS and on
# BAVED. Each run archived in its own folder (layer_probe's archive holds one run's encoders).
cd /work/main
PY=/work/main/.venv/bin/python
POOL=docs/results/baseline/ravdess_second_stage/pretrain/pool/encoder
CNN128=docs/results/baseline/ravdess_lrprobe_cnn128/pretrain/encoder
B=docs/results/baseline
$PY -m experiments.layer_probe --manifest /work/runs/scaling/baved.csv --corpus baved \
    --work /work/runs/lrprobe/baved_fusion --set fuse=egemaps \
    --encoder pool-fused-egemaps=$POOL --encoder cnn128-fused-egemaps=$CNN128 \
    --archive $B/baved_lrprobe_fusion
echo "== baved egemaps fusion done $(date)"
for corpus in ravdess baved; do
  $PY -m experiments.layer_probe --manifest /work/runs/scaling/$corpus.csv --corpus $corpus \
      --work /work/runs/lrprobe/${corpus}_fusion_compare --set fuse=compare \
      --encoder pool-fused-compare=$POOL --archive $B/${corpus}_lrprobe_fusion_compare
  echo "== $corpus compare fusion done $(date)"
done
