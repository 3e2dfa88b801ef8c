"""Every kind of bad input gets a clear per-file outcome, and the batch goes on."""
from __future__ import annotations

import numpy as np
import pytest

from avpretext import synthetic
from data_prep import store
from data_prep.decode import FrameSelector
from data_prep.face_signals import load_face_arrays
from data_prep.sources import discover_media

from .helpers import item_ids, run_extract

# Extraction runs of several videos (or a Ray cluster): left out of the quick check `-m "not slow"`.
pytestmark = pytest.mark.slow


# A phone camera slowing down in low light: 1 s at 30 fps, then 1 s at 15 fps (22.5 fps on average).
VFR_TIMES = np.round(np.r_[np.arange(30) / 30, 1 + np.arange(15) / 15], 3)


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad corpus ü")
    (root / "notes.mp4").write_text("this is not a video\n" * 50)
    (root / "empty.mp4").write_bytes(b"")
    whole = synthetic.write_talking_face(root / "src" / "whole.mp4", 3.0, seed=5)
    data = whole.read_bytes()
    (root / "moov_at_end_truncated.mp4").write_bytes(data[: len(data) // 2])
    fast = synthetic.write_talking_face(root / "src" / "fast.mp4", 3.0, seed=6, faststart=True)
    fast_data = fast.read_bytes()
    (root / "faststart_truncated.mp4").write_bytes(fast_data[: int(len(fast_data) * 0.6)])
    fast.unlink()
    whole.unlink()
    synthetic.write_talking_face(root / "no_audio.mp4", 2.0, audio=False)
    synthetic.write_talking_face(root / "silent.mp4", 2.0, level_db=-200.0)
    gray = np.full((120, 160, 3), 90, np.uint8)
    synthetic.write_media(root / "no_face.mp4", synthetic.VideoTrack(lambda i: gray, 25),
                          synthetic.AudioTrack(synthetic.voiced_speech(1.0)))
    face = synthetic.face_image()
    synthetic.write_media(root / "vfr.mp4", synthetic.VideoTrack(lambda i: face, len(VFR_TIMES), fps=30,
                                                                 frame_times=VFR_TIMES),
                          synthetic.AudioTrack(synthetic.voiced_speech(VFR_TIMES[-1])))
    _rotated(root / "rotated.mp4")
    synthetic.write_talking_face(root / "a" / "clip.mp4", 1.0, seed=7)
    synthetic.write_talking_face(root / "b" / "clip.mp4", 1.0, seed=8)
    return root


def _rotated(path):
    """A phone-style video: pixels stored turned by 90 degrees, display matrix says rotate back."""
    face = np.ascontiguousarray(np.rot90(synthetic.face_image(), k=-1))  # stored turned clockwise
    return synthetic.write_media(path, synthetic.VideoTrack(lambda i: face, 25, rotation=90),
                                 synthetic.AudioTrack(synthetic.voiced_speech(1.0)))


@pytest.fixture(scope="module")
def bad_run(bad_corpus, face_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad_out")
    summary = run_extract(bad_corpus, out, face_model)
    ids = {it.relpath: it.id for it in discover_media(bad_corpus)}
    return summary, out, ids


def _meta(bad_run, relpath):
    _, out, ids = bad_run
    return store.read_json(store.item_dir(out, ids[relpath]) / store.META_FILE)


def test_batch_goes_on_and_failures_name_file_and_reason(bad_run, bad_corpus):
    summary, out, ids = bad_run
    assert set(summary.failed) == {ids["notes.mp4"], ids["empty.mp4"], ids["moov_at_end_truncated.mp4"]}
    assert summary.done == len(ids) - 3
    assert "empty file" in summary.failed[ids["empty.mp4"]]
    for relpath in ("notes.mp4", "moov_at_end_truncated.mp4"):
        reason = summary.failed[ids[relpath]]
        assert str(bad_corpus / relpath) in reason and "cannot open" in reason
        record = store.read_json(store.failure_path(out, ids[relpath]))
        assert record["reason"] == reason


def test_failed_items_are_skipped_on_rerun_unless_retried(bad_run, bad_corpus, face_model):
    _, out, _ = bad_run
    again = run_extract(bad_corpus, out, face_model)
    assert again.done == 0 and not again.failed
    assert sorted(again.failed_earlier) == sorted(store.read_json(p)["id"] for p in (out / store.FAILED_DIR).iterdir())
    assert again.skipped == len(item_ids(out)) and len(again.failed_earlier) == 3  # not "skipped (already done)"
    assert "failed 0, failed in an earlier run 3 (not retried; --retry-failed redoes them)" in again.report()
    retried = run_extract(bad_corpus, out, face_model, retry_failed=True)
    assert len(retried.failed) == 3 and retried.done == 0


def test_truncated_faststart_keeps_decodable_part(bad_run):
    meta = _meta(bad_run, "faststart_truncated.mp4")
    assert 0 < meta["frames"] < 75 and meta["face_coverage"] == 1.0
    assert any("video decoding stopped" in w for w in meta["warnings"])


def test_no_audio_track_and_silent_audio_are_recorded(bad_run):
    no_audio = _meta(bad_run, "no_audio.mp4")
    assert no_audio["has_audio"] is False and any("no audio track" in w for w in no_audio["warnings"])
    silent = _meta(bad_run, "silent.mp4")
    assert silent["speech_s"] == 0 and any("audio is silent" in w for w in silent["warnings"])


def test_no_face_keeps_audio_and_marks_face_missing(bad_run):
    meta = _meta(bad_run, "no_face.mp4")
    assert meta["face_coverage"] == 0.0 and meta["speech_s"] > 0.5
    assert any("no face found" in w for w in meta["warnings"])


def test_variable_frame_rate_analyses_every_frame_up_to_the_cap(bad_run):
    """--fps 30 caps the frames' own rate, not the 22.5 fps average (which would drop 10 of the 45 frames)."""
    meta = _meta(bad_run, "vfr.mp4")
    assert meta["variable_frame_rate"] is True and meta["frames_decoded"] == meta["frames"] == len(VFR_TIMES)
    assert any(w.startswith("variable frame rate") for w in meta["warnings"])
    _, out, ids = bad_run
    times = np.asarray(load_face_arrays(store.item_dir(out, ids["vfr.mp4"]) / store.FACE_DIR)["times"])
    np.testing.assert_allclose(times, VFR_TIMES, atol=1e-3)  # at the frames' own presentation times


def test_rotated_video_is_made_upright(bad_run):
    meta = _meta(bad_run, "rotated.mp4")
    assert meta["rotation"] == 90 and (meta["frame_width"], meta["frame_height"]) == (240, 240)
    assert meta["face_coverage"] == 1.0  # mediapipe finds no face in the sideways picture


def test_same_file_name_in_two_folders_gets_two_ids(bad_run):
    _, out, ids = bad_run
    assert ids["a/clip.mp4"] != ids["b/clip.mp4"]
    assert store.is_done(out, ids["a/clip.mp4"]) and store.is_done(out, ids["b/clip.mp4"])


def test_frame_selector_caps_rate_on_presentation_times():
    def kept(times, fps):
        selector = FrameSelector(fps)
        return [t for t in times if selector.keep(t)]

    assert len(kept(np.arange(120) / 60, 30)) == 60  # 60 fps -> every other frame
    assert len(kept(np.arange(50) / 25, 30)) == 50  # 25 fps -> all frames
    assert len(kept([0.0, 0.0, 0.04, 0.04, 0.08], 30)) == 3  # duplicated timestamps dropped
