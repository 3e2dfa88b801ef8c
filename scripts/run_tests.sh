#!/usr/bin/env bash
# The test suite: set up, then pytest. The face model is packaged; only tests of real data in ../shared
# (real clips, RAVDESS) and the optional py-feat backend skip, each with its reason, when it is absent.
# AVPRETEXT_SHARED=/nonexistent bash scripts/run_tests.sh runs it as a clone without ../shared would.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
