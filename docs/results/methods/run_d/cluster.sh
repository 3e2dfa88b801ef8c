#!/bin/bash
# After semi.sh, with run_grid's per-fraction check (fb4cffc): the DeepEmoCluster fine-tuning loss at 10%,
# seed 0, paired with run.sh's current-recipe cells of this machine.
cd /work/main
PY=/work/main/.venv/bin/python
M=/work/runs/scaling/ravdess.csv; P=/work/main/docs/results/methods/run_c/pretrain; W=/work/runs/methods_d
A=/work/main/docs/results/methods/run_d
while pgrep -f "methods/run_d/semi.sh" > /dev/null; do sleep 10; done
$PY -m experiments.recipe_methods --manifest $M --pretrained $P --work $W --fractions 0.1 --seeds 0 \
    --methods current,cluster --archive $A
echo "== cluster seed 0 done $(date)"
