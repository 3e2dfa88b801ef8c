#!/bin/bash
# Frozen encoders read like openSMILE (experiments/layer_probe.py): statistics of every hidden state + the
# baseline's logistic regression, on the baseline grid's folds, seeds and label subsets. Two archived encoders
# of the same cnn architecture (16-32-64, dim 64, 64 mel bands):
#   pool: energy,cluster on the 6.1 h scaling pool, 1,908 steps (issue 24's pool-only arm);
#   av:   energy,face,au,cluster on the same pool (run C of the methods grid).
cd /work/main
PY=/work/main/.venv/bin/python
for corpus in ravdess baved; do
  $PY -m experiments.layer_probe --manifest /work/runs/scaling/$corpus.csv --corpus $corpus \
      --work /work/runs/lrprobe/$corpus \
      --encoder pool=docs/results/baseline/ravdess_second_stage/pretrain/pool/encoder \
      --encoder av=docs/results/methods/run_c/pretrain/encoder \
      --archive docs/results/baseline/${corpus}_lrprobe
  echo "== $corpus done $(date)"
done
