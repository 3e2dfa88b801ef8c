"""Fixtures of the extraction tests: the synthetic corpus extracted once per process count, read (never
written) by every test that needs exactly that extraction (each one used to run it again)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import run_extract


@pytest.fixture(scope="session")
def serial_extraction(synthetic_corpus, face_model, tmp_path_factory):
    """(summary, out) of the synthetic corpus extracted with default options by one worker."""
    out = tmp_path_factory.mktemp("serial_extraction") / "out"
    return run_extract(synthetic_corpus, out, face_model, workers=1), out


@pytest.fixture(scope="session")
def parallel_extraction(synthetic_corpus, face_model, tmp_path_factory) -> Path:
    """The synthetic corpus extracted with default options by the process pool (``--workers 2``)."""
    out = tmp_path_factory.mktemp("parallel_extraction") / "out"
    summary = run_extract(synthetic_corpus, out, face_model, workers=2)
    assert summary.done == 4 and not summary.failed
    return out
