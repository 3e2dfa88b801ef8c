#!/bin/bash
# After indomain2.sh (seed 0 at 10%): seeds 1 and 2 at 10%, then 25%; each stage archived on completion.
cd /work/main

W=/work/runs/indomain
for F in 0.1 0.1,0.25; do
  .venv/bin/python -m experiments.in_domain_grid --work $W/grid --in-domain $W/w --manifest /work/runs/scaling/ravdess.csv \
    --fractions $F --seeds 0,1,2 --scratch-from /work/runs/au5 --archive /work/main/docs/results/baseline/ravdess_in_domain
  echo "== stage $F done $(date)"
done
