"""A run's folder over its life: nothing written by a refused run, one live run at a time (OUT/run.lock), a
killed run's folder resumed as it is, DDP workers that end with their launcher, and what the user sees while
it trains (progress on the main process, validation lines)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avpretext.common.audio import AudioError
from avpretext.common.processes import process_state
from avpretext.common.run_lock import LOCK_FILE
from pretext.train import train
from tests.pretext.test_resume_exact import _descendants
from tests.pretext.test_train import REPO, _cli_args, _config

LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
          "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def _start(args, processes: int = 1) -> subprocess.Popen:
    script = [str(REPO / "pretext" / "train.py"), *map(str, args)]
    return subprocess.Popen((LAUNCH if processes > 1 else [sys.executable]) + script, cwd=REPO,
                            env={**os.environ, "ACCELERATE_USE_CPU": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_checkpoint(proc, out: Path, step: int = 2) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "checkpoints" / f"step_{step}").exists() and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the test could use it: " + proc.stderr.read()[-3000:]


def _ended(pid: int) -> bool:
    return process_state(pid)[0] != "alive"


@pytest.mark.slow
def test_a_refused_run_writes_nothing_so_the_corrected_command_runs(segments, tmp_path):
    from data_prep.segments import load_segments

    table = load_segments(segments)
    table.loc[table.index[-1], "audio_path"] = "relative/to/elsewhere/gone.flac"  # read last by the loaders
    table.to_parquet(tmp_path / "moved.parquet")
    (tmp_path / "label_config.json").write_text((Path(segments) / "label_config.json").read_text())
    out = tmp_path / "run"
    with pytest.raises(AudioError, match="gone.flac: cannot read audio \\(file not found\\)"):
        train(_config(tmp_path / "moved.parquet", out))
    with pytest.raises(ValueError, match="--log-every 0: must be a whole number >= 1"):
        train(_config(segments, out, log_every=0))
    with pytest.raises(ValueError, match="--lr -0.001: must be > 0"):
        train(_config(segments, out, lr=-1e-3))
    assert not out.exists()  # no config.json, environment.jsonl, events or lock to refuse the next command
    train(_config(segments, out, max_steps=2))
    assert (out / "encoder").is_dir() and not (out / LOCK_FILE).exists()


@pytest.mark.slow
def test_no_validation_segments_is_said_not_scored(segments, tmp_path, capsys):
    train(_config(segments, tmp_path / "run", max_steps=2, val_fraction=0.0))
    assert "no validation segments" in capsys.readouterr().out
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert {r["split"] for r in records} == {"train"}


@pytest.mark.slow
def test_a_second_live_run_is_refused_and_a_killed_runs_folder_resumes(segments, tmp_path):
    out = tmp_path / "run"
    first = _start(_cli_args(segments, out, 400))
    _wait_for_checkpoint(first, out)
    try:
        for extra in ([], ["--resume"]):
            second = subprocess.run([sys.executable, str(REPO / "pretext" / "train.py"),
                                     *map(str, _cli_args(segments, out, 400, extra))],
                                    cwd=REPO, capture_output=True, text=True, timeout=300)
            assert second.returncode == 2, second.stderr[-3000:]
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and f"is in use by a live run (pid {first.pid} on " in lines[0], lines
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert (out / LOCK_FILE).exists()  # left by the kill; the next run takes it over
    step = max(int(p.name.split("_")[1]) for p in (out / "checkpoints").glob("step_*"))
    resumed = subprocess.run([sys.executable, str(REPO / "pretext" / "train.py"),
                              *map(str, _cli_args(segments, out, step + 2, ["--resume"]))],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {step}" in resumed.stdout
    # Not a terminal: plain progress lines, not a bar's carriage returns.
    assert f"step {step + 2}/{step + 2} (100%)" in resumed.stderr and "\r" not in resumed.stderr
    assert not (out / LOCK_FILE).exists()


@pytest.mark.slow
def test_ddp_workers_end_with_their_killed_launcher_and_the_folder_resumes(segments, tmp_path):
    out = tmp_path / "run"
    launcher = _start(_cli_args(segments, out, 400), processes=2)
    _wait_for_checkpoint(launcher, out)
    workers = [pid for pid in _descendants(launcher.pid) if pid != launcher.pid]
    assert workers
    os.kill(launcher.pid, signal.SIGKILL)  # the launcher alone: its workers run in sessions of their own
    launcher.wait()
    deadline = time.time() + 60
    while time.time() < deadline and not all(_ended(pid) for pid in workers):
        time.sleep(0.1)
    alive = [pid for pid in workers if not _ended(pid)]
    for pid in alive:  # do not leave them running if the assertion below fails
        os.kill(pid, signal.SIGKILL)
    assert not alive, "DDP workers kept running after their launcher was killed"
    step = max(int(p.name.split("_")[1]) for p in (out / "checkpoints").glob("step_*"))
    resumed = _start(_cli_args(segments, out, step + 2, ["--resume"]), processes=2)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    assert f"at step {step}" in stdout
    assert stdout.count("encoder exported") == 1
