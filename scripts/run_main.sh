#!/usr/bin/env bash
# The main job: set up .venv, then videos -> data_prep extract -> data_prep label -> pretext/train.py
# (energy, face, au) -> fine-tuning, pretrained vs scratch -> report (Markdown + PNG).
#   bash scripts/run_main.sh                                  # embedded default: synthetic talking faces + labelled speech
#   bash scripts/run_main.sh --videos VIDEOS --labels M.csv   # your own videos and labelled speech manifest
#   bash scripts/run_main.sh --out runs/mine --workers 4      # other options: --fps, --pretrain-steps
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# mediapipe's face model: an explicit AVPRETEXT_FACE_MODEL wins, then the shared copy beside the repo,
# then the user cache / official download (data_prep.face_model).
if [ -z "${AVPRETEXT_FACE_MODEL:-}" ] && [ -f ../shared/models/face_landmarker.task ]; then
    export AVPRETEXT_FACE_MODEL="$(cd ../shared/models && pwd)/face_landmarker.task"
fi
exec .venv/bin/python -m pipeline.main_job "$@"
