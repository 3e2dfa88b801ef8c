"""The real talking-head clips (shared/data/talking_faces): faces found, labels for every task."""
from __future__ import annotations

import csv

import pytest

from data_prep import store
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.sources import discover_media

from .helpers import run_extract

# Extraction runs of several videos (or a Ray cluster): left out of the quick check `-m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_run(talking_faces, face_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("real")
    # 5 analysed frames per second keep this test short; the benchmark runs every frame.
    summary = run_extract(talking_faces / "manifest.csv", out, face_model, workers=2, options={"max_fps": 5})
    return summary, out


def test_every_clip_extracts_and_faces_are_found_on_all_with_audio_clips(real_run, talking_faces):
    summary, out = real_run
    rows = list(csv.DictReader(open(talking_faces / "manifest.csv")))
    assert summary.done == len(rows) and not summary.failed
    ids = {it.relpath: it.id for it in discover_media(talking_faces / "manifest.csv")}
    for row in rows:
        meta = store.read_json(store.item_dir(out, ids[row["path"]]) / store.META_FILE)
        assert meta["has_audio"] == (row["has_audio"] == "True"), row["path"]
        assert meta["face_coverage"] > 0.9, (row["path"], meta["face_coverage"])


def test_real_clips_get_labels_for_every_task(real_run):
    _, out = real_run
    config = build_label_config({"segmentation": {"mode": "clip"}})  # pre-cut clips: one segment each
    result = label_corpus(out, config, progress=False)
    stats = result.stats
    # 38 clips with audio, 3 of them (MEAD) with an all-zero audio track.
    assert stats["segments"] == 35
    for task in ("energy", "face", "au"):
        assert stats["tasks"][task]["coverage"] > 0.8, task
    for task in ("energy", "face"):
        counts = stats["tasks"][task]["class_counts"]
        assert min(counts.values()) >= 0.4 * sum(counts.values()), (task, counts)
    fired = [c for c, share in stats["tasks"]["au"]["frame_rule_share"].items() if share > 0 and c != "neutral"]
    assert len(fired) >= 4, stats["tasks"]["au"]
