#!/bin/bash
# Issue 26 item 6 on this machine: the 10% block of the methods grid, seed 0 first (every fold), two streams.
cd /work/exp26
export PYTHONPATH=/work/exp26
PY=/work/main/.venv/bin/python
M=/work/runs/scaling/ravdess.csv; P=/work/runs/scaling/pretrain/cnn/all; W=/work/runs/methods_c
SEEDS=${SEEDS:-0}
if [ "$1" = A ]; then
  $PY -m experiments.recipe_methods --manifest $M --pretrained $P --work $W --fractions 0.1 --seeds $SEEDS \
      --methods current,chunk_dynamic_mean,chunk_dynamic_gru,adversarial
else
  for m in auxiliary cluster; do
    $PY -c "from pathlib import Path; from experiments.recipe_methods import run_method; run_method('$M', '$P', Path('$W'), '$m', [0.1], [int(s) for s in '$SEEDS'.split(',')])"
  done
fi
