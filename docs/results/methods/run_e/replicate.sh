#!/bin/bash
# The current recipe's 10% seed-0 cells of run D (RAVDESS, pretrained and scratch) measured again on this machine,
# to see whether cells of two machines of this class can be paired (they cannot: ravdess_replicate/cells.csv).
cd /work/main
PY=/work/main/.venv/bin/python
$PY -m experiments.recipe_methods --manifest /work/runs/scaling/ravdess.csv \
    --pretrained /work/main/docs/results/methods/run_c/pretrain \
    --work /work/runs/methods_e/ravdess_replicate --fractions 0.1 --seeds 0 --methods current
