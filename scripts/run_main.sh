#!/usr/bin/env bash
# The main job: set up, then turn a folder of videos into labelled speech segments.
#   bash scripts/run_main.sh                 # on a small synthetic talking-face corpus built on the spot
#   bash scripts/run_main.sh VIDEOS [OUT]    # on your own folder of videos (or a CSV manifest)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${2:-runs/main}
if [ -n "${1:-}" ]; then
    VIDEOS=$1
else
    VIDEOS=runs/sample_corpus
    echo "== building the synthetic sample corpus in $VIDEOS"
    .venv/bin/python -c "from data_prep.synthetic import write_sample_corpus; write_sample_corpus('$VIDEOS')"
fi
# mediapipe's face model: an explicit AVPRETEXT_FACE_MODEL wins, then the shared copy beside the repo,
# then the user cache / official download (data_prep.face_model).
if [ -z "${AVPRETEXT_FACE_MODEL:-}" ] && [ -f ../shared/models/face_landmarker.task ]; then
    export AVPRETEXT_FACE_MODEL=../shared/models/face_landmarker.task
fi
echo "== data_prep extract $VIDEOS -> $OUT/extract"
.venv/bin/data_prep extract "$VIDEOS" --out "$OUT/extract" --workers "${WORKERS:-2}"
echo "== data_prep label $OUT/extract"
.venv/bin/data_prep label "$OUT/extract" ${LABEL_CONFIG:+--config "$LABEL_CONFIG"}
