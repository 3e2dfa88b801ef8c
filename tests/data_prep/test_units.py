"""Sources, storage, audio features and face-model resolution."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep import store
from data_prep.audio_features import StreamingEnergy, frame_energy_db
from data_prep.face_model import FaceModelError, MODEL_SHA256, download_face_model, resolve_face_model
from data_prep.sources import discover_media, make_item_id, select_shard


def test_ids_unique_stable_and_filesystem_safe(tmp_path):
    for rel in ["a/clip.mp4", "b/clip.mp4", "a b/clip.mp4", "a_b/clip.mp4", "ü/ñ clip.mp4", "x.wav"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "readme.txt").write_text("not media")
    items = discover_media(tmp_path)
    ids = [it.id for it in items]
    assert len(items) == 6 and len(set(ids)) == 6
    assert all(i.isascii() and "/" not in i and " " not in i for i in ids)
    assert make_item_id("a/clip.mp4") == make_item_id("a/clip.mp4")


def test_manifest_paths_relative_to_manifest_and_speakers(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "one.mp4").write_bytes(b"x")
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,speaker\nv/one.mp4,spk1\n")
    (item,) = discover_media(manifest)
    assert item.path == str(tmp_path / "v" / "one.mp4") and item.speaker == "spk1"
    bad = tmp_path / "bad.csv"
    bad.write_text("file\nv/one.mp4\n")
    with pytest.raises(ValueError, match="'path' column"):
        discover_media(bad)


def test_shards_partition_the_items(tmp_path):
    for i in range(40):
        (tmp_path / f"{i}.mp4").write_bytes(b"x")
    items = discover_media(tmp_path)
    shards = [select_shard(items, i, 3) for i in range(3)]
    assert sorted(it.id for s in shards for it in s) == sorted(it.id for it in items)
    assert all(shards)


def test_npy_stream_writer_round_trip(tmp_path):
    rows = np.random.default_rng(0).normal(size=(1000, 478, 3)).astype(np.float32)
    with store.NpyStreamWriter(tmp_path / "x.npy", np.float32, (478, 3)) as writer:
        for lo in range(0, 1000, 7):
            writer.append(rows[lo:lo + 7])
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), rows)
    with store.NpyStreamWriter(tmp_path / "empty.npy", np.bool_) as writer:
        pass
    assert np.load(tmp_path / "empty.npy").shape == (0,)


def test_stale_work_dirs_of_dead_processes_are_removed(tmp_path):
    work = store.make_work_dir(tmp_path, "item")
    assert store.clean_stale_work_dirs(tmp_path) == 0  # our own process is alive
    dead = work.parent / work.name.replace(f".{__import__('os').getpid()}.", ".999999999.")
    work.rename(dead)
    assert store.clean_stale_work_dirs(tmp_path) == 1 and not dead.exists()


def test_streaming_energy_equals_whole_signal():
    signal = np.random.default_rng(1).normal(0, 0.1, 16000 * 3 + 123).astype(np.float32)
    meter = StreamingEnergy()
    for lo in range(0, len(signal), 4999):
        meter.feed(signal[lo:lo + 4999])
    np.testing.assert_allclose(meter.finish(), frame_energy_db(signal), atol=1e-4)
    louder = frame_energy_db(signal * 10)
    np.testing.assert_allclose(louder - frame_energy_db(signal), 20.0, atol=1e-3)


def test_face_model_resolution_order(tmp_path, monkeypatch, face_model):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AVPRETEXT_FACE_MODEL", raising=False)
    assert resolve_face_model(face_model) == face_model
    monkeypatch.setenv("AVPRETEXT_FACE_MODEL", str(face_model))
    assert resolve_face_model() == face_model
    with pytest.raises(FaceModelError, match="--face-model"):
        resolve_face_model(tmp_path / "missing.task")
    monkeypatch.delenv("AVPRETEXT_FACE_MODEL")
    with pytest.raises(FaceModelError, match="AVPRETEXT_FACE_MODEL"):
        resolve_face_model(download=False)


def test_download_verifies_checksum(tmp_path, face_model):
    """The real download code, pointed at a local copy (no internet here)."""
    target = download_face_model(tmp_path / "cache" / "face_landmarker.task", url=face_model.as_uri())
    assert target.stat().st_size == face_model.stat().st_size
    with pytest.raises(FaceModelError, match="sha256"):
        download_face_model(tmp_path / "other.task", url=face_model.as_uri(), sha256="0" * 64)
    assert not (tmp_path / "other.task").exists()
    assert MODEL_SHA256.startswith("64184e22")


def test_offline_download_failure_names_option_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("AVPRETEXT_FACE_MODEL", raising=False)
    monkeypatch.setattr("data_prep.face_model.MODEL_URL", "http://127.0.0.1:9/face_landmarker.task")
    with pytest.raises(FaceModelError) as err:
        resolve_face_model()
    assert "--face-model" in str(err.value) and "AVPRETEXT_FACE_MODEL" in str(err.value)
