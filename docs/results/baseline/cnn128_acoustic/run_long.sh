#!/bin/bash
# After run.sh: the same encoder and labels pretrained twice as long (3,816 steps, 8 passes over the pool;
# the 1,908-step run's validation cluster UAR and acoustic r were still rising at its end: 0.506 -> 0.548,
# 0.63 -> 0.64 over its last 400 steps), so that "the steps it needs" is measured rather than assumed.
# Read by the same probe beside the 1,908-step encoder (its cells are reused from run.sh's work folders).
set -e
cd /work/main
PY=/work/main/.venv/bin/python
W=/work/runs/acoustic; A=docs/results/baseline/cnn128_acoustic; B=docs/results/baseline
CNN128=$B/ravdess_lrprobe_cnn128/pretrain/encoder
$PY pretext/train.py --data $W/pool_labels --tasks energy,cluster,acoustic --encoder cnn \
    --out $W/pretrain_long --max-steps 3816 --batch-size 16 --lr 0.001 --warmup-steps 190 \
    --max-seconds 3.0 --eval-every 190 --checkpoint-every 190 --log-every 20 --seed 0 --num-workers 1 --resume
mkdir -p $A/pretrain_long && cp -r $W/pretrain_long/encoder $W/pretrain_long/config.json \
    $W/pretrain_long/metrics.jsonl $A/pretrain_long/
echo "== long pretrained $(date)"
$PY -m experiments.layer_probe --manifest /work/runs/scaling/ravdess.csv --corpus ravdess \
    --work $W/lrprobe_ravdess --encoder cnn128=$CNN128 --encoder cnn128-acoustic=$A/pretrain/encoder \
    --encoder cnn128-acoustic-long=$A/pretrain_long/encoder --archive $B/ravdess_lrprobe_cnn128_acoustic
echo "== ravdess done $(date)"
$PY -m experiments.layer_probe --manifest /work/runs/devcover/baved-devcover.csv --corpus baved-devcover \
    --work /work/runs/devcover/lrprobe --encoder pool=$B/ravdess_second_stage/pretrain/pool/encoder \
    --encoder cnn128=$CNN128 --encoder cnn128-acoustic=$A/pretrain/encoder \
    --encoder cnn128-acoustic-long=$A/pretrain_long/encoder --archive $B/baved-devcover_lrprobe_cnn128_acoustic
echo "== baved done $(date)"
