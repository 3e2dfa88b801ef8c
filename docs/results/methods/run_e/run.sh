#!/bin/bash
# Run E (2026-12-07, a new machine). Before it, a replication (replicate.sh): the current recipe's 10% seed-0
# cells of run D again. Then issue 26's "chunking on BAVED", on the splits whose dev parts cover every arousal
# level (dev_min_per_class = 5, the default since this run):
# the 10% block of the current recipe and Lin and Busso's dynamic chunking (mean over chunks: the better of the two
# aggregations on RAVDESS in run D, the GRU left out for CPU; BAVED's longest clip lasts
# 5.12 s, so C = ceil(5.12 / 1 s) = 6 as on RAVDESS), every fold, seeds 0-2, pretrained (run C's archived cnn on
# the 6.1 h pool) and scratch. BAVED is archived on its own (never merged with RAVDESS cells).
cd /work/main
PY=/work/main/.venv/bin/python
P=/work/main/docs/results/methods/run_c/pretrain; A=/work/main/docs/results/methods/run_e
for S in 0 0,1 0,1,2; do
  $PY -m experiments.recipe_methods --manifest /work/runs/scaling/baved.csv --pretrained $P \
      --work /work/runs/methods_e/baved --fractions 0.1 --seeds $S \
      --methods current,chunk_dynamic_mean --archive $A/baved
  echo "== baved seeds $S done $(date)"
done
