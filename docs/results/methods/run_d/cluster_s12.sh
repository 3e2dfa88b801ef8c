#!/bin/bash
# Confirmation of the seed-0 candidate (+2.4 pretrained): the DeepEmoCluster fine-tuning loss at 10%, seeds 1
# and 2, on the same machine and work folder as run.sh's current-recipe cells (which it pairs with).
cd /work/main
PY=/work/main/.venv/bin/python
M=/work/runs/scaling/ravdess.csv; P=/work/main/docs/results/methods/run_c/pretrain; W=/work/runs/methods_d
A=/work/main/docs/results/methods/run_d
$PY -m experiments.recipe_methods --manifest $M --pretrained $P --work $W --fractions 0.1 --seeds 0,1,2 \
    --methods current,cluster --archive $A
echo "== cluster seeds 0-2 done $(date)"
