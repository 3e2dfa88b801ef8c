#!/bin/bash
# wait for the pretrained encoder, then one fusion probe process per fold (the pretrained encoder is the same for
# every seed, so a fold's files are embedded once per process and its three seeds reuse them)
cd /work/runs/issue24
export PYTHONPATH=/work/exp24:/work/runs/issue24/scripts AVPRETEXT_CACHE=/work/runs/issue24/cache
until [ -f pretrain/energy_acoustic_stats_120/encoder/model.safetensors ]; do sleep 10; done
sleep 5
for f in 0 1 2 3; do
  nohup /work/main/.venv/bin/python -u scripts/fgrid.py ravdess probe pretrained egemaps 0.1,0.25,1 0,1,2 $f \
    > fgrid_ravdess_probe_pretrained_egemaps_fold$f.log 2>&1 &
done
wait
