#!/bin/bash
# Issue 26 item 6 on one machine (after the second-stage grid of issue 24 on the same machine): the 10% block of
# the methods grid for the current recipe and Lin and Busso's dynamic chunking (mean, GRU), every fold, seeds
# 0-2, pretrained (run C's archived cnn on the 6.1 h pool) and scratch; then, if time allows, the
# semi-supervised adversarial block. Archived into run_d (never merged with run C's cells of another machine).
cd /work/main
PY=/work/main/.venv/bin/python
M=/work/runs/scaling/ravdess.csv; P=/work/main/docs/results/methods/run_c/pretrain; W=/work/runs/methods_d
A=/work/main/docs/results/methods/run_d
while pgrep -f "ravdess_second_stage/scripts/second_stage.sh" > /dev/null; do sleep 10; done
for S in 0 0,1 0,1,2; do
  $PY -m experiments.recipe_methods --manifest $M --pretrained $P --work $W --fractions 0.1 --seeds $S \
      --methods current,chunk_dynamic_mean,chunk_dynamic_gru --archive $A
  echo "== seeds $S done $(date)"
done
