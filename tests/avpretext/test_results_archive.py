"""The RAVDESS experiment's archive (docs/results/ravdess): restoring it and archiving again loses nothing,
re-archiving is byte-for-byte stable, and a restore over different encoders is refused."""
from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / "docs" / "results" / "ravdess"


@pytest.fixture(scope="module")
def results_script():
    spec = importlib.util.spec_from_file_location("ravdess_results", REPO / "experiments" / "ravdess_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _cells(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.open(path, "rt").read().splitlines()]


@pytest.mark.slow
def test_restore_then_archive_round_trips_every_cell(results_script, tmp_path):
    work, again = tmp_path / "work", tmp_path / "again"
    results_script.restore(work, ARCHIVE)
    results_script.archive(work, again)
    archived = sorted(ARCHIVE.glob("experiment_*.jsonl.gz"))
    assert archived, f"no archived experiments in {ARCHIVE}"
    for path in archived:
        original = _cells(path)
        assert len(original) > 0
        assert _cells(again / path.name) == original, path.name
        first_cell = work / path.name.removesuffix(".jsonl.gz") / "cells" / original[0]["cell"]
        assert json.loads((first_cell / "metrics.json").read_text()) == original[0]["metrics"]

    # Archiving unchanged cells again writes the same bytes (no gzip timestamp), so git sees no change.
    before = {path.name: path.read_bytes() for path in again.iterdir()}
    assert all(before[path.name][4:8] == bytes(4) for path in archived)  # gzip header's MTIME field
    results_script.archive(work, again)
    assert {path.name: path.read_bytes() for path in again.iterdir()} == before

    # A second restore finds every cell present and rewrites nothing.
    stamp = {path: path.stat().st_mtime_ns for path in work.rglob("metrics.json")}
    results_script.restore(work, ARCHIVE)
    assert {path: path.stat().st_mtime_ns for path in work.rglob("metrics.json")} == stamp


def test_restore_refuses_cells_of_a_different_encoder(results_script, tmp_path):
    archived = json.loads((ARCHIVE / "encoders.json").read_text())
    name = sorted(archived)[0]  # "<pretrain>/<fold>"
    encoder = tmp_path / "work" / name / "encoder" / "model.safetensors"
    encoder.parent.mkdir(parents=True)
    encoder.write_bytes(b"weights that this archive's cells were not trained with")
    with pytest.raises(SystemExit, match=name):
        results_script.restore(tmp_path / "work", ARCHIVE)
    assert not list((tmp_path / "work").glob("experiment_*")), "a refused restore must not write cells"
