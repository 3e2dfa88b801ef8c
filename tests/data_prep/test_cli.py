"""The two commands as users run them, and the decord decoder."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from data_prep import store
from data_prep.segments import load_segments
from data_prep.face_signals import load_face_arrays

# Extraction runs of several videos (or a Ray cluster): left out of the quick check `-m "not slow"`.
pytestmark = pytest.mark.slow


def _run(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "data_prep", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kwargs)


def test_extract_then_label_from_the_command_line(synthetic_corpus, face_model, tmp_path):
    out = tmp_path / "out"
    extract = _run("extract", synthetic_corpus, "--out", out, "--workers", 2, "--fps", 10, "--face-model",
                   face_model, "--no-progress")
    assert extract.returncode == 0, extract.stderr
    assert "done 4, skipped (already done) 0, failed 0" in extract.stdout
    config = tmp_path / "label.toml"
    config.write_text('[segmentation]\nmode = "clip"\n\n[energy]\nstatistic = "range_db"\n')
    label = _run("label", out, "--config", config, "--no-progress")
    assert label.returncode == 0, label.stderr
    assert "4 segments" in label.stdout and "load_segments" in label.stdout
    assert len(load_segments(out)) == 4


def test_command_line_errors_are_clear(tmp_path, face_model):
    missing = _run("extract", tmp_path / "nowhere", "--out", tmp_path / "o", "--face-model", face_model)
    assert missing.returncode == 2 and "nowhere: no such folder or manifest" in missing.stderr
    no_model = _run("extract", tmp_path, "--out", tmp_path / "o", "--face-model", tmp_path / "x.task")
    assert no_model.returncode == 2 and "--face-model" in no_model.stderr
    bad_config = tmp_path / "c.toml"
    bad_config.write_text("[face]\nregoin = 'mouth'\n")
    label = _run("label", tmp_path, "--config", bad_config)
    assert label.returncode == 2 and "unknown keys in [face]: ['regoin']" in label.stderr
    for given, allowed in (("3/2", "0..1"), ("2/2", "0..1"), ("1/1", "0..0")):  # shards count from 0
        shard = _run("extract", tmp_path, "--out", tmp_path / "o", "--shard", given)
        assert shard.returncode == 2 and f"{given}: I must be in {allowed} (shards count from 0" in shard.stderr
    assert not (tmp_path / "o").exists()


def test_decord_decoder_matches_pyav_frames(synthetic_corpus, face_model, tmp_path):
    for decoder in ("pyav", "decord"):
        extract = _run("extract", synthetic_corpus / "sub dir", "--out", tmp_path / decoder, "--decoder", decoder,
                       "--face-model", face_model, "--no-progress")
        assert extract.returncode == 0, extract.stderr
    faces = {}
    for decoder in ("pyav", "decord"):
        (item,) = (tmp_path / decoder / store.ITEMS_DIR).iterdir()
        faces[decoder] = load_face_arrays(item / store.FACE_DIR)
    np.testing.assert_allclose(faces["pyav"]["times"], faces["decord"]["times"], atol=1e-3)
    assert faces["decord"]["present"].all()
    # Different decoders and scalers give slightly different pixels, hence slightly different landmarks.
    diff = np.abs(np.asarray(faces["pyav"]["landmarks"]) - np.asarray(faces["decord"]["landmarks"]))
    assert np.median(diff[..., :2]) < 0.01


def test_accelerate_launch_splits_the_corpus_between_processes(synthetic_corpus, face_model, tmp_path):
    """The same command under `accelerate launch`: each rank takes its shard, together they do all items."""
    import os

    env = {**os.environ, "ACCELERATE_USE_CPU": "1"}
    launch = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "data_prep", "extract",
         str(synthetic_corpus), "--out", str(tmp_path / "out"), "--fps", "5", "--face-model", str(face_model),
         "--no-progress"], capture_output=True, text=True, timeout=600, env=env)
    assert launch.returncode == 0, launch.stderr[-3000:]
    summaries = sorted(p.name for p in (tmp_path / "out").glob("summary_shard*.json"))
    assert summaries == ["summary_shard0of2.json", "summary_shard1of2.json"]
    assert len(list((tmp_path / "out" / store.ITEMS_DIR).iterdir())) == 4
