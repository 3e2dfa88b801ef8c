#!/bin/bash
# After pretrain_cnn.sh: the default-size cnn (128 mel bands, 32-64-128, dim 128) read by the layer-statistics
# probe on both corpora; its pretraining (config, curve, encoder) archived beside the cells.
cd /work/main
PY=/work/main/.venv/bin/python
while pgrep -f "ravdess_lrprobe/pretrain_cnn.sh" > /dev/null; do sleep 10; done
R=/work/runs/lrprobe/pretrain_cnn128
A=docs/results/baseline/ravdess_lrprobe_cnn128
mkdir -p $A/pretrain && cp -r $R/encoder $R/config.json $R/metrics.jsonl $R/label_stats.json $A/pretrain/ 2>/dev/null
for corpus in ravdess baved; do
  $PY -m experiments.layer_probe --manifest /work/runs/scaling/$corpus.csv --corpus $corpus \
      --work /work/runs/lrprobe/$corpus --encoder cnn128=$A/pretrain/encoder \
      --archive docs/results/baseline/${corpus}_lrprobe_cnn128
  echo "== $corpus done $(date)"
done
