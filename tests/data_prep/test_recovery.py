"""Refused runs write nothing, killed runs leave nothing that the next complete run keeps, unfinished label
folders are refused, summaries say what happened to each item, and a label table reads from any folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avpretext import synthetic
from avpretext.common import processes
from data_prep import store
from data_prep.label.stage import label_corpus
from data_prep.segments import load_segments
from data_prep.decode import AudioInfo, iter_audio_chunks

from .helpers import item_ids, run_extract

REPO = Path(__file__).resolve().parents[2]
FAST = {"max_fps": 10}


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "data_prep", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def _speech_wav(path, seconds, seed=0):
    return synthetic.write_media(path, audio=synthetic.AudioTrack(synthetic.voiced_speech(seconds, seed=seed),
                                                                  codec="pcm_s16le"))


@pytest.fixture(scope="module")
def speech_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("speech_corpus")
    for k in range(2):
        _speech_wav(root / f"talk{k}.wav", 3.0, seed=k)
    return root


# --- refused runs write nothing ---------------------------------------------------------------------------

def test_a_refused_extract_writes_nothing_so_the_corrected_command_runs(speech_corpus, face_model, tmp_path):
    out = tmp_path / "E"
    refused = _cli("extract", "/nonexistent", "--out", out, "--face-model", face_model)
    assert refused.returncode == 2 and "/nonexistent: no such folder or manifest" in refused.stderr
    assert not out.exists()  # no extract_config.json that would refuse the corrected command
    corrected = _cli("extract", speech_corpus, "--out", out, "--fps", 10, "--face-model", face_model, "--no-progress")
    assert corrected.returncode == 0, corrected.stderr
    assert "done 2, skipped (already done) 0, failed 0" in corrected.stdout


def test_an_empty_folder_is_refused_saying_what_files_it_looks_for(face_model, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not media")
    refused = _cli("extract", tmp_path / "empty", "--out", tmp_path / "out", "--face-model", face_model)
    assert refused.returncode == 2, refused.stdout
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"data_prep extract: error: {tmp_path / 'empty'}: no media file found")
    assert all(ext in line for ext in (".mp4", ".mkv", ".wav", ".flac", ".jpg")) and "subfolders" in line
    assert not (tmp_path / "out").exists()
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\n")
    refused = _cli("extract", manifest, "--out", tmp_path / "out", "--face-model", face_model)
    assert refused.returncode == 2 and "the manifest lists no file" in refused.stderr


# --- summaries ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_rerun_reports_earlier_failures_as_failed_not_skipped(tmp_path, face_model):
    corpus = tmp_path / "corpus"
    _speech_wav(corpus / "talk.wav", 1.0)
    (corpus / "notes.mp4").write_text("not a video\n")
    args = ("--out", tmp_path / "out", "--fps", 10, "--face-model", face_model, "--no-progress")
    first = _cli("extract", corpus, *args)
    assert first.returncode == 1 and "done 1, skipped (already done) 0, failed 1" in first.stdout
    rerun = _cli("extract", corpus, *args)
    assert rerun.returncode == 1, rerun.stdout  # the folder still holds a failed item
    assert ("done 0, skipped (already done) 1, failed 0, failed in an earlier run 1 (not retried; "
            "--retry-failed redoes them)") in rerun.stdout
    (failed_id,) = [p.stem for p in (tmp_path / "out" / store.FAILED_DIR).iterdir()]
    assert f"FAILED in an earlier run {failed_id}: {corpus / 'notes.mp4'}: cannot open" in rerun.stdout
    (corpus / "notes.mp4").unlink()
    _speech_wav(corpus / "notes.mp4", 1.0, seed=3)  # the user replaces the bad file
    retried = _cli("extract", corpus, *args, "--retry-failed")
    assert retried.returncode == 0 and "done 1, skipped (already done) 1, failed 0" in retried.stdout


def test_warnings_name_a_few_items_then_count_the_rest(tmp_path, face_model):
    corpus = tmp_path / "corpus"
    for k in range(5):
        synthetic.write_media(corpus / f"quiet{k}.wav",
                              audio=synthetic.AudioTrack(np.zeros(8000, np.float32), codec="pcm_s16le"))
    summary = run_extract(corpus, tmp_path / "out", face_model, options=FAST)
    ids = sorted(item_ids(tmp_path / "out"))
    assert sorted(summary.warnings["audio is silent"]) == ids
    line = next(line for line in summary.report().splitlines() if "audio is silent" in line)
    assert line == f"  warning x5: audio is silent ({', '.join(ids[:3])} and 2 more)"


# --- killed extraction workers --------------------------------------------------------------------------

# Run in a process of its own that is the "child subreaper" of what it starts (prctl), so the killed run's
# orphaned workers become its children and stay zombies until it exits: exactly what an init that never reaps
# leaves behind, made deterministic. ``os.kill(pid, 0)`` succeeds for those zombies.
_KILL_AND_RERUN = textwrap.dedent("""
    import ctypes, json, os, signal, subprocess, sys, time
    from pathlib import Path
    corpus, out, model = sys.argv[1:4]
    assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    cmd = [sys.executable, "-m", "data_prep", "extract", corpus, "--out", out, "--workers", "2",
           "--face-model", model, "--no-progress"]
    tmp = Path(out) / ".tmp"
    for attempt in range(3):  # a worker may publish its item between the look and the kill: try again
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not (
                tmp.is_dir() and sum(p.is_dir() for p in tmp.iterdir()) >= 2):
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        debris = sorted(p.name for p in tmp.iterdir() if p.is_dir())
        if debris:
            break
    def state(pid):  # (state, parent pid), or None once the process is gone
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return fields[0], int(fields[1])

    writers = {int(name.rsplit(".", 2)[1].split("-")[0]) for name in debris}
    deadline = time.time() + 60  # SIGKILL is delivered at once, but the workers finish dying on their own
    while time.time() < deadline and any(state(pid) and state(pid)[0] != "Z" for pid in writers):
        time.sleep(0.01)
    zombies = sorted(pid for pid in writers if state(pid) == ("Z", os.getpid()))
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    print(json.dumps({"debris": debris, "zombies": zombies, "rc": rerun.returncode, "stdout": rerun.stdout,
                      "stderr": rerun.stderr[-3000:], "after": sorted(p.name for p in tmp.iterdir())}))
""")


@pytest.mark.skipif(not processes.has_proc() or not sys.platform.startswith("linux"),
                    reason="zombies are made deterministic with prctl(PR_SET_CHILD_SUBREAPER) (Linux)")
@pytest.mark.slow
def test_killed_workers_leave_no_debris_after_one_complete_rerun(synthetic_corpus, face_model, tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", _KILL_AND_RERUN, str(synthetic_corpus), str(out), str(face_model)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["debris"], "the kill left no work folder to clean: the scenario did not happen"
    assert result["zombies"], result  # the writers of the debris are unreaped zombies: os.kill(pid, 0) succeeds
    assert result["rc"] == 0, result["stderr"]
    assert result["after"] == []  # one complete rerun removed every killed worker's folder
    assert len(item_ids(out)) == 4


# --- decoding -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_audio_that_ends_before_the_video_is_not_called_truncated(tmp_path, face_model):
    """A looped clip whose audio is a little shorter than its video: Matroska gives each stream its own
    DURATION tag, while the container's (and PyAV's stream) duration is the longest stream's."""
    face = synthetic.face_image()
    path = synthetic.write_media(tmp_path / "corpus" / "looped.mkv",
                                 synthetic.VideoTrack(lambda i: face, 12 * 25, fps=25),
                                 synthetic.AudioTrack(synthetic.voiced_speech(11.2, seed=1)))
    info = AudioInfo()
    samples = sum(len(chunk) for chunk in iter_audio_chunks(str(path), info))
    assert samples == int(11.2 * 16000) and info.truncated_at_s is None
    run_extract(tmp_path / "corpus", tmp_path / "out", face_model, options={"max_fps": 2})
    (item,) = item_ids(tmp_path / "out")
    meta = store.read_json(store.item_dir(tmp_path / "out", item) / store.META_FILE)
    assert not [w for w in meta["warnings"] if "decoding stopped" in w], meta["warnings"]
    assert meta["audio_duration_s"] == pytest.approx(11.2) and meta["video_duration_s"] == pytest.approx(12.0)


def test_a_truncated_audio_file_is_still_called_truncated(tmp_path):
    path = synthetic.write_media(tmp_path / "talk.m4a", audio=synthetic.AudioTrack(synthetic.voiced_speech(4.0)),
                                 faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])  # the index at the start still declares 4 s
    info = AudioInfo()
    decoded = sum(len(chunk) for chunk in iter_audio_chunks(str(path), info)) / 16000
    assert 1.0 < decoded < 3.5 and info.truncated_at_s == pytest.approx(decoded)


# --- label folders --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def speech_extraction(speech_corpus, face_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("speech_extraction") / "ex"
    assert run_extract(speech_corpus, out, face_model, options=FAST).done == 2
    return out


_KILLED_AFTER = textwrap.dedent("""
    import os, signal, sys
    from data_prep import store
    from data_prep.label.stage import label_corpus
    extract_dir, dest, last = sys.argv[1:4]
    write_json = store.write_json_atomic
    def write_then_die(path, obj):  # SIGKILL right after one file of the folder is published
        write_json(path, obj)
        if os.path.basename(path) == last:
            os.kill(os.getpid(), signal.SIGKILL)
    store.write_json_atomic = write_then_die
    label_corpus(extract_dir, dest=dest, progress=False)
""")


@pytest.mark.slow
@pytest.mark.parametrize("last", ["label_stats.json", "label_config.json"])
def test_a_label_folder_killed_part_way_is_refused_until_relabelled(speech_extraction, tmp_path, last):
    dest = tmp_path / "labels"
    killed = subprocess.run([sys.executable, "-c", _KILLED_AFTER, str(speech_extraction), str(dest), last],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    with pytest.raises(ValueError, match="unfinished label folder"):
        load_segments(dest)
    train = subprocess.run([sys.executable, str(REPO / "pretext" / "train.py"), "--data", str(dest), "--out",
                            str(tmp_path / "run"), "--tasks", "energy", "--max-steps", "1"],
                           capture_output=True, text=True, timeout=300)
    assert train.returncode == 2 and "Traceback" not in train.stderr, train.stderr[-3000:]
    assert len([line for line in train.stderr.splitlines() if "error:" in line]) == 1, train.stderr
    # A complete folder killed while being relabelled is refused too: its old table is not taken as the new.
    label_corpus(speech_extraction, dest=dest, progress=False)
    assert len(load_segments(dest)) == 2
    killed = subprocess.run([sys.executable, "-c", _KILLED_AFTER, str(speech_extraction), str(dest), last],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9
    with pytest.raises(ValueError, match="unfinished label folder"):
        load_segments(dest)
    label_corpus(speech_extraction, dest=dest, progress=False)
    assert len(load_segments(dest)) == 2


def test_a_table_from_two_label_runs_is_refused(speech_extraction, tmp_path):
    """A table published without its statistics (e.g. a folder written by a version that wrote the table
    first, killed before the rest): segment counts that disagree are refused."""
    dest = tmp_path / "labels"
    label_corpus(speech_extraction, dest=dest, progress=False)
    table = pd.read_parquet(dest / "segments.parquet")
    table.head(1).to_parquet(dest / "segments.parquet")
    with pytest.raises(ValueError, match=r"\(1 segments\) and label_stats.json \(2 segments\) come from different"):
        load_segments(dest)
    (dest / "label_config.json").unlink()
    with pytest.raises(ValueError, match="segments.parquet without label_config.json"):
        load_segments(dest)


# --- paths that resolve wherever the next stage runs ---------------------------------------------------

@pytest.mark.slow
def test_label_table_paths_resolve_from_any_working_folder(speech_corpus, face_model, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    extract = _cli("extract", os.path.relpath(speech_corpus, work), "--out", "ex", "--fps", 10, "--face-model",
                   face_model, "--no-progress", cwd=work)
    assert extract.returncode == 0, extract.stderr
    label = _cli("label", "ex", "--no-progress", cwd=work)
    assert label.returncode == 0, label.stderr
    stored = pd.read_parquet(work / "ex" / "segments.parquet")["audio_path"]
    assert all(p.startswith("items/") and p.endswith("/audio.flac") for p in stored)  # relative to the table
    for table in (load_segments(work / "ex"), load_segments(work / "ex" / "segments.parquet")):
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in table["audio_path"])
    # Labels written elsewhere (--out) point back into the extraction; a moved pair of folders still reads.
    label = _cli("label", "ex", "--out", "labels/run1", "--no-progress", cwd=work)
    assert label.returncode == 0, label.stderr
    assert set(pd.read_parquet(work / "labels/run1/segments.parquet")["audio_path"]) == {
        os.path.join("..", "..", "ex", p) for p in stored}
    work.rename(tmp_path / "moved")
    table = load_segments(tmp_path / "moved" / "labels" / "run1")
    assert all(p.startswith(str(tmp_path / "moved" / "ex")) and os.path.isfile(p) for p in table["audio_path"])
