#!/bin/bash
# Issue 24's untried encoder lever: the toolkit's default cnn (128 mel bands, 32-64-128, dim 128) pretrained on
# the whole 6.1 h scaling pool with the acoustic task added (PASE+-style regression of eGeMAPS's frame
# descriptors: pitch, loudness, jitter, shimmer, HNR, formants, spectral shape) to energy,cluster; otherwise
# exactly like cnn128 (ravdess_lrprobe/pretrain_cnn.sh: 1,908 steps, batch 16, 3 s crops, lr 1e-3, warm-up 190,
# seed 0). Question: does an encoder made to carry pitch and loudness read BAVED's arousal (where the
# energy,cluster encoders were no better than random weights) and RAVDESS better? Read by the layer-statistics
# probe beside cnn128 and its random twin, on RAVDESS and on BAVED's dev-covering splits.
set -e
cd /work/main
PY=/work/main/.venv/bin/python
W=/work/runs/acoustic; A=docs/results/baseline/cnn128_acoustic; B=docs/results/baseline
CNN128=$B/ravdess_lrprobe_cnn128/pretrain/encoder
mkdir -p $W
# 1. the pool's media (resumes the items already extracted)
$PY -m experiments.scaling --work /work/runs/scaling --encoders cnn --steps extract
echo "== 1 extract done $(date)"
# 2. the descriptors of every pool item, two processes (the label stage reads them from the cache)
$PY - <<'P'
from concurrent.futures import ProcessPoolExecutor
from data_prep.signals import list_done_items, load_media
from pretext.tasks.acoustic import cached_llds
out = "/work/runs/scaling/pool_extract"
paths = [m.audio_path for m in (load_media(out, i) for i in list_done_items(out)) if m.audio_path is not None]
def warm(p):
    try:
        cached_llds(p)
    except Exception as err:  # the label stage records the failure per item
        return f"{p}: {err}"
with ProcessPoolExecutor(2) as ex:
    failed = [r for r in ex.map(warm, paths, chunksize=16) if r]
print(f"{len(paths)} audio files, {len(failed)} failed", *failed[:5], sep="\n")
P
echo "== 2 descriptors done $(date)"
if [ ! -f $W/pool_labels/segments.parquet ]; then
  $PY -c "
from pathlib import Path
from experiments.scaling import label_pool
label_pool(Path('/work/runs/scaling/pool_extract'), 'energy,cluster,acoustic', dest=Path('$W/pool_labels'))"
fi
echo "== 3 labelled $(date)"
$PY pretext/train.py --data $W/pool_labels --tasks energy,cluster,acoustic --encoder cnn \
    --out $W/pretrain --max-steps 1908 --batch-size 16 --lr 0.001 --warmup-steps 190 \
    --max-seconds 3.0 --eval-every 190 --checkpoint-every 190 --log-every 20 --seed 0 --num-workers 1 --resume
mkdir -p $A/pretrain && cp -r $W/pretrain/encoder $W/pretrain/config.json $W/pretrain/metrics.jsonl $A/pretrain/
cp $W/pool_labels/label_stats.json $A/pretrain/ 2>/dev/null || true
echo "== 4 pretrained $(date)"
$PY -m experiments.layer_probe --manifest /work/runs/devcover/baved-devcover.csv --corpus baved-devcover \
    --work /work/runs/devcover/lrprobe --encoder pool=$B/ravdess_second_stage/pretrain/pool/encoder \
    --encoder cnn128=$CNN128 --encoder cnn128-acoustic=$A/pretrain/encoder --archive $B/baved-devcover_lrprobe_cnn128_acoustic
echo "== 5 baved done $(date)"
$PY -m experiments.layer_probe --manifest /work/runs/scaling/ravdess.csv --corpus ravdess \
    --work $W/lrprobe_ravdess --encoder cnn128=$CNN128 --encoder cnn128-acoustic=$A/pretrain/encoder \
    --archive $B/ravdess_lrprobe_cnn128_acoustic
echo "== 6 ravdess done $(date)"
