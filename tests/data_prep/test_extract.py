"""Extraction on synthetic talking-face videos: outputs, parallel == serial, shards, resume after a kill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from data_prep import store
from data_prep.face_signals import load_face_arrays
from data_prep.sources import discover_media

from .helpers import assert_same_outputs, item_ids, run_extract

# Extraction runs of several videos (or a Ray cluster): left out of the quick check `-m "not slow"`.
pytestmark = pytest.mark.slow


def test_extract_writes_audio_energy_and_face_signals(synthetic_corpus, serial_extraction):
    summary, out = serial_extraction
    assert summary.done == 4 and not summary.failed
    items = {it.relpath: it.id for it in discover_media(synthetic_corpus)}
    moving = store.item_dir(out, items["moving.mp4"])
    meta = store.read_json(moving / store.META_FILE)
    audio, rate = sf.read(moving / store.AUDIO_FILE)
    assert rate == 16000 and abs(len(audio) / rate - 4.0) < 0.1
    assert meta["frames"] == 100 and meta["face_coverage"] == 1.0  # 4 s at 25 fps, every frame
    face = load_face_arrays(moving / store.FACE_DIR)
    assert face["landmarks"].shape == (100, 478, 3) and face["blendshapes"].shape == (100, 52)
    assert face["aus"].shape == (100, len(meta["au_names"])) and np.isfinite(face["aus"]).all()
    assert np.all(np.diff(face["times"]) > 0)
    energy = np.load(moving / store.ENERGY_FILE)
    assert len(energy) == 1 + (len(audio) - 400) // 160
    # The audio-only file: audio and energy, no face folder.
    podcast = store.item_dir(out, items["podcast.wav"])
    assert (podcast / store.AUDIO_FILE).exists() and not (podcast / store.FACE_DIR).exists()
    assert store.read_json(podcast / store.META_FILE)["has_video"] is False


def test_jaw_motion_shows_in_blendshapes(synthetic_corpus, serial_extraction):
    _, out = serial_extraction
    items = {it.relpath: it.id for it in discover_media(synthetic_corpus)}
    jaw = {name: load_face_arrays(store.item_dir(out, items[name]) / store.FACE_DIR)["aus"][:, -1]
           for name in ("moving.mp4", "still.mp4")}  # AU26 (jaw drop) is the last AU
    assert np.std(jaw["moving.mp4"]) > 5 * np.std(jaw["still.mp4"])


def test_parallel_equals_serial(serial_extraction, parallel_extraction):
    assert_same_outputs(serial_extraction[1], parallel_extraction)


def test_union_of_shards_equals_whole(synthetic_corpus, face_model, tmp_path):
    run_extract(synthetic_corpus, tmp_path / "whole", face_model, options={"max_fps": 10})
    sizes = []
    for index in range(3):
        summary = run_extract(synthetic_corpus, tmp_path / "shards", face_model, shard=(index, 3),
                              options={"max_fps": 10})
        sizes.append(summary.done)
    assert sum(sizes) == 4
    assert_same_outputs(tmp_path / "whole", tmp_path / "shards")


def test_rerun_skips_finished_items(synthetic_corpus, face_model, tmp_path):
    run_extract(synthetic_corpus, tmp_path / "out", face_model, options={"max_fps": 5})
    again = run_extract(synthetic_corpus, tmp_path / "out", face_model, options={"max_fps": 5})
    assert again.done == 0 and again.skipped == 4


def test_rerun_with_other_options_is_refused(synthetic_corpus, face_model, tmp_path):
    import pytest

    run_extract(synthetic_corpus / "sub dir", tmp_path / "out", face_model, options={"max_fps": 5})
    with pytest.raises(ValueError, match="other options"):
        run_extract(synthetic_corpus / "sub dir", tmp_path / "out", face_model, options={"max_fps": 10})


def test_kill_mid_run_then_rerun_equals_uninterrupted(synthetic_corpus, face_model, serial_extraction, tmp_path):
    """SIGKILL the CLI as soon as one item is published; the rerun completes the corpus identically."""
    cmd = [sys.executable, "-m", "data_prep", "extract", str(synthetic_corpus), "--out", str(tmp_path / "killed"),
           "--face-model", str(face_model), "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not item_ids(tmp_path / "killed") and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = item_ids(tmp_path / "killed")
    assert 1 <= len(finished_before) < 4
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped (already done) {len(finished_before)}" in rerun.stdout
    assert not any((tmp_path / "killed" / store.TMP_DIR).iterdir())  # debris of the killed run removed
    assert_same_outputs(serial_extraction[1], tmp_path / "killed")  # the uninterrupted run
