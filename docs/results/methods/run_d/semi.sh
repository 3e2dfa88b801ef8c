#!/bin/bash
# After run.sh on the same machine: the semi-supervised blocks at 10% (their heads train on every training row,
# so a cell costs about what a 100% cell does), seed 0 first: DeepEmoCluster's fine-tuning loss (cluster),
# then Latif et al.'s auxiliary heads. Paired with run.sh's current-recipe cells of this machine.
cd /work/main
PY=/work/main/.venv/bin/python
M=/work/runs/scaling/ravdess.csv; P=/work/main/docs/results/methods/run_c/pretrain; W=/work/runs/methods_d
A=/work/main/docs/results/methods/run_d
while pgrep -f "methods/run_d/run.sh" > /dev/null; do sleep 10; done
for m in cluster auxiliary; do
  $PY -m experiments.recipe_methods --manifest $M --pretrained $P --work $W --fractions 0.1 --seeds 0 \
      --methods current,$m --archive $A
  echo "== $m seed 0 done $(date)"
done
