#!/bin/bash
# BAVED on splits whose dev speakers cover every arousal level (dev_min_per_class = 5, the default since
# 2026-12-07; folds 1 and 2 change, folds 0 and 3 and every test part stay): the old splits left fold 1's dev
# part all 'high' and fold 2's 7 rows of two levels, so C (and fine-tuning's epoch) was chosen on the recall of
# one class. Summary key 'baved-devcover' (these cells never pair with the 'baved' cells of the old splits).
# 1. eGeMAPS and ComParE + LR; 2. the layer-statistics probe (pool, cnn128 and their random twins); 3. fusion
# with eGeMAPS (pool); then 4. RAVDESS fusion with ComParE (pool; RAVDESS's splits are unchanged by the rule)
# and 5. the same on BAVED; 6. the summary.
cd /work/main
PY=/work/main/.venv/bin/python
W=/work/runs/devcover; B=docs/results/baseline
POOL=$B/ravdess_second_stage/pretrain/pool/encoder
CNN128=$B/ravdess_lrprobe_cnn128/pretrain/encoder
mkdir -p $W && cp -n /work/runs/scaling/baved.csv $W/baved-devcover.csv
$PY -c "from pathlib import Path; from experiments.scaling import run_baseline
run_baseline(Path('$W'), 'baved-devcover', [0.1, 0.25, 1.0], [0, 1, 2], 4, ['egemaps', 'compare'])"
$PY -m experiments.baseline --work $W --steps report > /dev/null
echo "== 1 baseline done $(date)"
$PY -m experiments.layer_probe --manifest $W/baved-devcover.csv --corpus baved-devcover --work $W/lrprobe \
    --encoder pool=$POOL --encoder cnn128=$CNN128 --archive $B/baved-devcover_lrprobe
echo "== 2 lrprobe done $(date)"
$PY -m experiments.layer_probe --manifest $W/baved-devcover.csv --corpus baved-devcover --work $W/fusion \
    --set fuse=egemaps --encoder pool-fused-egemaps=$POOL --archive $B/baved-devcover_lrprobe_fusion
echo "== 3 fusion egemaps done $(date)"
$PY -m experiments.layer_probe --manifest /work/runs/scaling/ravdess.csv --corpus ravdess \
    --work /work/runs/lrprobe/ravdess_fusion_compare --set fuse=compare \
    --encoder pool-fused-compare=$POOL --archive $B/ravdess_lrprobe_fusion_compare
echo "== 4 ravdess compare fusion done $(date)"
$PY -m experiments.layer_probe --manifest $W/baved-devcover.csv --corpus baved-devcover --work $W/fusion_compare \
    --set fuse=compare --encoder pool-fused-compare=$POOL --archive $B/baved-devcover_lrprobe_fusion_compare
echo "== 5 baved compare fusion done $(date)"
$PY -m experiments.baseline --work /work/runs/baseline_report_only --steps report > /dev/null
echo "== 6 summary done $(date)"
