#!/bin/bash
cd /work/main
while pgrep -f "experiments.in_domain_grid" > /dev/null; do sleep 5; done
W=/work/runs/indomain
run() { .venv/bin/python -m experiments.in_domain_grid --work $W/grid --in-domain $W/w --manifest /work/runs/scaling/ravdess.csv \
    --seeds 0,1,2 --scratch-from /work/runs/au5 --archive /work/main/docs/results/baseline/ravdess_in_domain "$@"; }
run --fractions 0.1 --steps report > /dev/null
run --fractions 0.1,0.25 --modes probe && echo "== 25% probe done $(date)"
run --fractions 0.1,0.25 && echo "== 25% finetune done $(date)"
