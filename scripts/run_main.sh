#!/usr/bin/env bash
# The main job: set up .venv, then videos -> data_prep extract -> data_prep label -> pretext/train.py
# (energy, face, au) -> fine-tuning, pretrained vs scratch -> report (Markdown + PNG).
#   bash scripts/run_main.sh                                  # embedded default: synthetic talking faces + labelled speech
#   bash scripts/run_main.sh --videos VIDEOS --labels M.csv   # your own videos and labelled speech manifest
#   bash scripts/run_main.sh --out runs/mine --workers 4      # other options: --fps, --pretrain-steps
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# mediapipe's face model ships inside the package (data_prep/assets), so nothing is needed offline; an
# exported AVPRETEXT_FACE_MODEL=PATH still wins (data_prep.face_model).
exec .venv/bin/python -m avpretext.main_job "$@"
