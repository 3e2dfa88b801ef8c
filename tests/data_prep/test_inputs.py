"""Extraction inputs: what discovery takes, variable frame rates, paths that are not
files, several or small faces, file modes under the umask, label debris and the 0-segment warning."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from avpretext import synthetic
from data_prep import store
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.decode import FRAME_DECODERS, VideoInfo
from data_prep.face_signals import SMALL_FACE_PX, load_face_arrays
from data_prep.sources import discover_media

from .helpers import item_ids, run_extract

FAST = {"max_fps": 10}  # frame counts do not matter in most of these tests


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "data_prep", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def _speech_wav(path, seconds, seed=0):
    return synthetic.write_media(path, audio=synthetic.AudioTrack(synthetic.voiced_speech(seconds, seed=seed),
                                                                  codec="pcm_s16le"))


# --- what discovery takes -------------------------------------------------------------------------------

def test_output_folder_inside_the_input_folder_is_never_scanned(tmp_path, face_model):
    corpus = tmp_path / "corpus"
    _speech_wav(corpus / "talk.wav", 1.0)
    first = run_extract(corpus, corpus / "out", face_model, options=FAST)
    assert first.done == 1
    # An older extraction with other options, also inside the input folder: recognised by its config file.
    older = run_extract(corpus, corpus / "older", face_model, options={"max_fps": 5})
    assert older.done == 1 and older.skipped == 0  # "out" (an extraction) was not taken as input either
    for _ in range(2):  # a rerun that took in the previous run's audio.flac files would grow 1 -> 2 -> 4
        again = run_extract(corpus, corpus / "out", face_model, options=FAST)
        assert (again.done, again.skipped, again.failed) == (0, 1, {})
    assert len(item_ids(corpus / "out")) == 1
    assert [it.relpath for it in discover_media(corpus)] == ["talk.wav"]


def test_paths_that_are_not_files_are_failed_items_with_their_reason(tmp_path, face_model):
    corpus = tmp_path / "corpus"
    _speech_wav(corpus / "talk.wav", 1.0)
    (corpus / "folder.mp4").mkdir()
    _speech_wav(corpus / "folder.mp4" / "inside.wav", 1.0, seed=1)  # a folder with a media name is searched too
    (corpus / "gone.mp4").symlink_to(corpus / "deleted.mp4")
    os.mkfifo(corpus / "pipe.mp4")  # opening it would block the worker forever
    out = tmp_path / "out"
    summary = run_extract(corpus, out, face_model, options=FAST)
    ids = {it.relpath: it.id for it in discover_media(corpus)}
    assert summary.done == 2 and store.is_done(out, ids["folder.mp4/inside.wav"])
    expected = {"folder.mp4": "a folder, not a media file",
                "gone.mp4": f"broken symbolic link (its target {corpus / 'deleted.mp4'} does not exist)",
                "pipe.mp4": "not a regular file (a named pipe)"}
    assert set(summary.failed) == {ids[rel] for rel in expected}
    for rel, reason in expected.items():
        assert summary.failed[ids[rel]] == f"{corpus / rel}: {reason}"
        assert store.read_json(store.failure_path(out, ids[rel]))["reason"] == summary.failed[ids[rel]]
        assert f"FAILED {ids[rel]}: {corpus / rel}: {reason}" in summary.report()


@pytest.mark.slow
def test_extract_exit_codes(tmp_path, face_model):
    corpus = tmp_path / "corpus"
    _speech_wav(corpus / "talk.wav", 1.0)
    (corpus / "notes.mp4").write_text("not a video\n")
    args = ("--fps", 10, "--face-model", face_model, "--no-progress")
    some_failed = _cli("extract", corpus, "--out", tmp_path / "out", *args)
    assert some_failed.returncode == 1, some_failed.stderr
    assert "done 1, skipped (already done) 0, failed 1" in some_failed.stdout
    (corpus / "notes.mp4").unlink()
    all_done = _cli("extract", corpus, "--out", tmp_path / "out2", *args)
    assert all_done.returncode == 0, all_done.stderr
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for command in (("extract", corpus, "--out", a_file, *args), ("label", tmp_path / "out2", "--out", a_file)):
        refused = _cli(*command)
        assert refused.returncode == 2
        expected = f"data_prep {command[0]}: error: {a_file}: the output folder is an existing file"
        assert refused.stderr.strip() == expected


# --- frame rates ----------------------------------------------------------------------------------------

def _phone_vfr(path):
    """1 s at 30 fps, then 1 s at 15 fps (a phone camera slowing down in low light): 22.5 fps on average."""
    times = np.round(np.r_[np.arange(30) / 30, 1 + np.arange(15) / 15], 3)
    face = synthetic.face_image()
    synthetic.write_media(path, synthetic.VideoTrack(lambda i: face, len(times), frame_times=times))
    return times


@pytest.mark.parametrize("decoder", sorted(FRAME_DECODERS))
def test_variable_frame_rate_keeps_every_frame_up_to_the_cap(tmp_path, decoder):
    source = _phone_vfr(tmp_path / "vfr.mp4")
    info = VideoInfo()
    times = [t for t, _ in FRAME_DECODERS[decoder](str(tmp_path / "vfr.mp4"), info, max_fps=30)]
    assert info.variable_frame_rate and info.native_fps < 25  # the average rate (22.5; decord says 24)...
    np.testing.assert_allclose(times, source, atol=1e-3)  # ...never caps the analysed rate: all 45 frames
    info = VideoInfo()
    capped = [t for t, _ in FRAME_DECODERS[decoder](str(tmp_path / "vfr.mp4"), info, max_fps=15)]
    np.testing.assert_allclose(capped, source[::2][:15].tolist() + source[30:].tolist(), atol=1e-3)


@pytest.mark.parametrize("decoder", sorted(FRAME_DECODERS))
def test_constant_frame_rate_sampling_is_unchanged(tmp_path, decoder):
    face = synthetic.face_image()
    synthetic.write_media(tmp_path / "cfr.mp4", synthetic.VideoTrack(lambda i: face, 50, fps=25))  # 2 s
    for max_fps, expected in ((30, np.arange(50) / 25), (10, np.arange(20) / 10)):
        info = VideoInfo()
        times = [t for t, _ in FRAME_DECODERS[decoder](str(tmp_path / "cfr.mp4"), info, max_fps=max_fps)]
        assert not info.variable_frame_rate
        np.testing.assert_allclose(times, expected, atol=0.021)  # 25 fps at 10/s: the nearest frame of each tick
        assert len(times) == len(expected)


# --- several faces, small faces -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def face_run(tmp_path_factory, face_model):
    root = tmp_path_factory.mktemp("faces")
    face = synthetic.face_image()
    two = np.ascontiguousarray(np.concatenate([face, face[:, ::-1]], axis=1))  # 480 x 240, two people
    synthetic.write_media(root / "two_faces.mp4", synthetic.VideoTrack(lambda i: two, 10, fps=10))
    canvas = np.full((240, 320, 3), 90, np.uint8)  # a 120 px face in a 320 x 240 frame, far from the camera
    canvas[60:180, 100:220] = cv2.resize(face, (120, 120), interpolation=cv2.INTER_AREA)
    synthetic.write_media(root / "small_face.mp4", synthetic.VideoTrack(lambda i: canvas, 10, fps=10))
    synthetic.write_media(root / "one_face.mp4", synthetic.VideoTrack(lambda i: face, 10, fps=10))
    out = tmp_path_factory.mktemp("faces_out")
    summary = run_extract(root, out, face_model, options=FAST)
    items = {it.relpath: store.item_dir(out, it.id) for it in discover_media(root)}
    return summary, {rel: store.read_json(d / store.META_FILE) for rel, d in items.items()}, items


def test_several_faces_in_a_frame_are_a_warning(face_run):
    summary, meta, items = face_run
    assert meta["two_faces.mp4"]["multi_face_frames"] == 10 and meta["two_faces.mp4"]["max_faces"] == 2
    assert (np.asarray(load_face_arrays(items["two_faces.mp4"] / store.FACE_DIR)["num_faces"]) == 2).all()
    assert any(w.startswith("several faces: 10 of 10 analysed frames show 2 or more (up to 2)")
               for w in meta["two_faces.mp4"]["warnings"])
    assert summary.warnings["several faces"] == [items["two_faces.mp4"].name]
    assert not any(w.startswith("several faces") for w in meta["one_face.mp4"]["warnings"])


def test_small_faces_are_a_warning(face_run):
    summary, meta, items = face_run
    small = meta["small_face.mp4"]
    assert small["face_frames"] == 10 and small["small_face_frames"] == 10
    bbox = np.asarray(load_face_arrays(items["small_face.mp4"] / store.FACE_DIR)["bbox"])
    sides = np.minimum((bbox[:, 2] - bbox[:, 0]) * small["frame_width"],
                       (bbox[:, 3] - bbox[:, 1]) * small["frame_height"])
    assert (sides < SMALL_FACE_PX).all()
    assert f"small face: the tracked face is under {SMALL_FACE_PX} px (shorter side) in 10 of 10 face frames" in \
        " ".join(small["warnings"])
    assert summary.warnings["small face"] == [items["small_face.mp4"].name]
    for rel in ("one_face.mp4", "two_faces.mp4"):  # the 240 px test face spans about 92 x 109 px
        assert meta[rel]["small_face_frames"] == 0
    assert "small face" in summary.report() and "several faces" in summary.report()


# --- file modes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, dir_mode, file_mode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_outputs_follow_the_umask(tmp_path, face_model, umask, dir_mode, file_mode):
    corpus = tmp_path / "corpus"
    synthetic.write_talking_face(corpus / "face.mp4", 1.0)
    _speech_wav(corpus / "talk.wav", 4.0)
    (corpus / "notes.mp4").write_text("not a video\n")  # a failure record too
    out = tmp_path / "out"
    previous = os.umask(umask)
    try:
        summary = run_extract(corpus, out, face_model, options={"max_fps": 5})
        label_corpus(out, progress=False)
    finally:
        os.umask(previous)
    assert summary.done == 2 and len(summary.failed) == 1
    paths = [out, *out.rglob("*")]
    assert {p.relative_to(out).as_posix() for p in paths} >= {
        ".", ".tmp", "extract_config.json", "segments.parquet", "label_stats.json", "failed"}
    wrong = {p.relative_to(out).as_posix(): oct(p.stat().st_mode & 0o777) for p in paths
             if p.stat().st_mode & 0o777 != (dir_mode if p.is_dir() else file_mode)}
    assert not wrong


# --- label: debris of a killed write, 0 segments --------------------------------------------------------

@pytest.fixture(scope="module")
def short_clips(tmp_path_factory, face_model):
    """Three 2 s speech clips: shorter than the 3 s a window needs."""
    root = tmp_path_factory.mktemp("short_clips")
    for k in range(3):
        _speech_wav(root / f"clip{k}.wav", 2.0, seed=k)
    out = tmp_path_factory.mktemp("short_out")
    run_extract(root, out, face_model)
    return out


def _killed_mid_write(path: Path) -> None:
    """A process that dies (SIGKILL) halfway through store.write_atomic of ``path``."""
    code = ("import os, signal, sys; from data_prep import store\n"
            "def write(tmp):\n    tmp.write_bytes(b'PAR1 half a table')\n    os.kill(os.getpid(), signal.SIGKILL)\n"
            "store.write_atomic(sys.argv[1], write)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr


def test_label_removes_debris_of_a_killed_write_but_not_a_live_writers_file(short_clips, tmp_path):
    dest = tmp_path / "labels"
    dest.mkdir()
    _killed_mid_write(dest / "segments.parquet")
    _killed_mid_write(dest / "label_stats.json")
    (debris,) = dest.glob(".segments.parquet.*")
    live = dest / store.temp_name(".segments.parquet")  # this process is alive: a concurrent writer
    live.write_bytes(b"in progress")
    unrelated = dest / ".notes.txt.x.1.y"
    unrelated.write_text("a user's file")
    label_corpus(short_clips, dest=dest, progress=False)
    assert not debris.exists() and not list(dest.glob(".label_stats.json.*"))
    assert live.exists() and unrelated.exists()
    assert (dest / "segments.parquet").read_bytes()[:4] == b"PAR1"


def test_extract_removes_debris_of_killed_atomic_writes(face_model, tmp_path):
    out = tmp_path / "out"
    corpus = tmp_path / "corpus"
    _speech_wav(corpus / "talk.wav", 1.0)
    run_extract(corpus, out, face_model, options=FAST)
    _killed_mid_write(out / "summary_shard0of1.json")
    _killed_mid_write(store.failure_path(out, "x"))
    assert len(list(out.glob(".summary*"))) == 1 and len(list((out / store.FAILED_DIR).glob(".x.json.*"))) == 1
    run_extract(corpus, out, face_model, options=FAST)
    assert not list(out.glob(".summary*")) and not list((out / store.FAILED_DIR).glob(".*"))


@pytest.mark.slow
def test_zero_segments_is_a_warning_with_the_reasons(short_clips, tmp_path):
    windows = {"segmentation": {"mode": "windows"}}  # 3-10 s windows only: 2 s clips give none
    result = label_corpus(short_clips, build_label_config(windows), progress=False)
    assert result.stats["segments"] == 0
    warning = ("0 segments: 3 media had no speech region of at least 3.0 s; "
               "try segmentation.mode = auto (or clip) for pre-cut clips")
    assert result.stats["warnings"] == [warning]
    assert json.loads((short_clips / "label_stats.json").read_text())["warnings"] == [warning]
    config = tmp_path / "windows.toml"
    config.write_text('[segmentation]\nmode = "windows"\n')
    console = _cli("label", short_clips, "--no-progress", "--config", config)
    assert console.returncode == 0, console.stderr
    assert f"WARNING {warning}" in console.stdout


def test_default_auto_segmentation_keeps_pre_cut_clips_whole(short_clips, tmp_path):
    """The same 2 s clips under the default (auto): one segment each, spanning the clip's speech."""
    result = label_corpus(short_clips, dest=tmp_path / "auto", progress=False)
    assert result.stats["segments"] == 3
    assert result.table.groupby("media_id").size().tolist() == [1, 1, 1]
    assert result.table["duration"].between(1.5, 2.0).all(), result.table["duration"].tolist()
