#!/bin/bash
# After run.sh on the same machine: Latif et al.'s semi-supervised auxiliary heads (speaker and gender on every
# training row, the emotion loss on the labelled 10%), RAVDESS at 10%, seeds 0, then 0-1, then 0-2, paired with
# the current recipe's cells of the same run (recorded with dev_min_per_class, unlike replicate.sh's). Run D
# measured seed 0 on another machine; this completes the block on one machine.
cd /work/main
PY=/work/main/.venv/bin/python
P=/work/main/docs/results/methods/run_c/pretrain; A=/work/main/docs/results/methods/run_e
while pgrep -f "methods/run_e/run.sh" > /dev/null; do sleep 10; done
for S in 0 0,1 0,1,2; do
  $PY -m experiments.recipe_methods --manifest /work/runs/scaling/ravdess.csv --pretrained $P \
      --work /work/runs/methods_e/ravdess --fractions 0.1 --seeds $S \
      --methods current,auxiliary --archive $A/ravdess
  echo "== ravdess auxiliary seeds $S done $(date)"
done
