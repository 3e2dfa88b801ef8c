#!/bin/bash
# finetune cells seed by seed (all 4 folds of seed 0 first, so a partial grid still has every fold)
# usage: ft_chain.sh INIT FRACTION
cd /work/main
export PYTHONPATH=/work/main:/work/main/runs/issue24 AVPRETEXT_CACHE=/work/main/runs/issue24/cache
for s in 0 1 2; do
  nice -n 10 .venv/bin/python -u runs/issue24/grid.py finetune $1 $2 $s >> runs/issue24/finetune_$1_$2.log 2>&1 || exit 1
done
