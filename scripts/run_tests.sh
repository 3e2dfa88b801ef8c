#!/usr/bin/env bash
# The test suite: set up, then pytest. Tests that need ../shared (real clips, the face model) skip with a
# reason when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
