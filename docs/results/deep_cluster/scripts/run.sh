#!/bin/sh
# DeepEmoCluster's rounds on RAVDESS audio and their purity against the emotions, as run on 2026-12-06/07.
# Work folder W (not in git); the pretraining ran from a snapshot of main at 7118937 (git archive), the
# analysis from main at the commit that archived these files.
set -e
W=/work/runs/issue26
# 1. Audio-only extraction of the 1,440 RAVDESS clips (64 s) and the label stage: energy + cluster, k = 8
#    (1,416 segments; 24 clips hold no 1 s speech region; 136 s).
python -m data_prep extract ../shared/data/ravdess/manifest.csv --out $W/ravdess_extract --workers 1 --no-progress
python -m data_prep label $W/ravdess_extract --config label_config.json --out $W/ravdess_labels
# 2. Pretraining: cnn 16-32-64 (dim 64), energy + cluster, re-clustered on the encoder's own pooled embeddings
#    after every epoch (79 steps), 320 steps; the emotions are not in the table and never seen. Run from a
#    snapshot, set PYTHONPATH to it, so that its modules, not another tree's, are imported.
python pretext/train.py --data $W/ravdess_labels \
  --tasks energy,cluster --encoder cnn --encoder-options '{"channels": [16, 32, 64], "dim": 64}' \
  --recluster-every 1 --max-steps 320 --batch-size 16 --max-seconds 3 --lr 1e-3 --warmup-steps 30 \
  --val-fraction 0.1 --num-workers 1 --eval-every 100 --checkpoint-every 160 --log-every 20 --report-to none \
  --seed 0 --out $W/pretrain2
# 3. Purity and NMI per round, beside k-means of the descriptors, a random encoder and eGeMAPS.
python -m experiments.deep_cluster_purity --labels $W/ravdess_labels --run $W/pretrain2 \
  --out docs/results/deep_cluster --seeds 0,1,2
