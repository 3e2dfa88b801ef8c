#!/bin/bash
# Run F (2026-12-08, run E's machine): issue 26's semi-supervised auxiliary blocks over all three seeds on one
# machine. RAVDESS, 10% of the labels, every fold, seeds 0-2, pretrained (run C's archived cnn on the 6.1 h pool)
# and scratch: the current recipe, Latif et al.'s auxiliary speaker + gender heads and the gradient-reversal
# (adversarial) speaker head, both training on every training row whose speaker/gender is known. The work folder
# is run E's replication folder, whose current-recipe seed-0 cells were measured on this machine and are reused.
# dev_min_per_class=0 as those cells (and runs C-D) were made: on RAVDESS every actor records every emotion, so
# the splits are identical either way (tests/finetune/test_splits_metrics.py), and the cells stay comparable.
# One seed at a time over all methods, so a stopped run leaves balanced blocks.
cd /work/main
PY=/work/main/.venv/bin/python
P=/work/main/docs/results/methods/run_c/pretrain; A=/work/main/docs/results/methods/run_f
for S in 0 0,1 0,1,2; do
  $PY -m experiments.recipe_methods --manifest /work/runs/scaling/ravdess.csv --pretrained $P \
      --work /work/runs/methods_e/ravdess_replicate --fractions 0.1 --seeds $S \
      --methods current,auxiliary,adversarial --set dev_min_per_class=0 --archive $A
  echo "== ravdess seeds $S done $(date)"
done
