#!/bin/bash
# The toolkit's default cnn (128 mel bands, 32-64-128 channels, dim 128; the pool encoder above is the
# 64-band 16-32-64 variant the scaling grids used) pretrained exactly like the pool encoder (energy,cluster on
# the 6.1 h scaling pool's labels, 1,908 steps, batch 16, 3 s crops, lr 1e-3, warm-up 190, seed 0), then read
# by the layer-statistics probe on both corpora.
cd /work/main
PY=/work/main/.venv/bin/python
$PY pretext/train.py --data /work/runs/second/pool_labels --tasks energy,cluster --encoder cnn \
    --out /work/runs/lrprobe/pretrain_cnn128 --max-steps 1908 --batch-size 16 --lr 0.001 --warmup-steps 190 \
    --max-seconds 3.0 --eval-every 190 --checkpoint-every 190 --log-every 20 --seed 0 --num-workers 1 --resume
echo "== pretrain done $(date)"
