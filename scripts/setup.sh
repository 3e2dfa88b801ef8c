#!/usr/bin/env bash
# Create .venv (if missing) and install avpretext with its test dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# pip prints a warning per unreachable local index folder on some machines; keep the log readable.
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import data_prep, pretext, torch, mediapipe, av" \
    || { echo "setup failed: see the pip output above" >&2; exit 1; }
