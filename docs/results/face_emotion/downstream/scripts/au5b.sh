#!/bin/bash
# Cells of issue 25 item 5 in stages so a kill leaves complete pairs: seed 0 at 10/25%, then seeds 1 and 2.
set -e
cd /work/main
PY=/work/main/.venv/bin/python
while pgrep -f "from experiments.au_downstream import pretrain" > /dev/null; do sleep 10; done
for seeds in ${STAGES:-0}; do
  $PY -m experiments.au_downstream --work /work/runs/au5 --scaling /work/runs/scaling --steps cells,baseline,report \
    --fractions 0.1,0.25 --seeds $seeds --archive /work/main/docs/results/face_emotion/downstream
  echo "== stage seeds $seeds done $(date)"
done
