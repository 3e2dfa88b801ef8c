"""pretext/train.py end to end: tiny runs, two-process DDP, kill and resume, plug-in task, overfitting."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from avpretext.common.audio import AudioError
from data_prep.segments import load_segments
from encoders import load_pretrained
from pretext.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


class SpeedTask(__import__("tests.pretext.plugin_task", fromlist=["DurationTask"]).DurationTask):
    """A task nobody labelled the segments for."""

    name = "speed"


TINY = {"channels": [8, 8, 16], "dim": 16}


def _config(segments, out, **kwargs):
    base = dict(data=str(segments), tasks="energy,face,au", encoder="cnn", out=str(out), encoder_options=TINY,
                max_steps=4, batch_size=4, num_workers=0, eval_every=2, checkpoint_every=2, log_every=1,
                max_seconds=2.0, val_fraction=0.2, warmup_steps=1)
    base.update(kwargs)
    return TrainConfig(**base)


def _metrics(out):
    return [json.loads(line) for line in open(Path(out) / "metrics.jsonl")]


@pytest.mark.slow
def test_tiny_run_logs_metrics_checkpoints_and_exports(segments, tmp_path):
    export = train(_config(segments, tmp_path / "run"))
    encoder = load_pretrained(export)
    assert encoder.config.dim == 16
    records = _metrics(tmp_path / "run")
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4]
    assert {"energy/loss", "face/uar", "au/acc"} <= set(records[0])
    assert any(r["split"] == "val" for r in records)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step_2", "step_4"]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["encoder_options"] == TINY
    where = [json.loads(line) for line in (tmp_path / "run" / "environment.jsonl").read_text().splitlines()]
    assert len(where) == 1 and where[0]["torch"] == torch.__version__ and where[0]["cpu"]


@pytest.mark.slow
def test_init_encoder_continues_from_the_saved_weights_and_refuses_another_architecture(segments, tmp_path):
    """Continued pretraining: with a learning rate too small to move a weight, the run's exported encoder has the
    parameters it started from (batch-norm statistics move with any training pass: not compared), while a run
    without --init-encoder (other seed) starts from other weights."""
    first = load_pretrained(train(_config(segments, tmp_path / "first", max_steps=2)))
    still = dict(lr=1e-12, weight_decay=0.0, max_steps=1, warmup_steps=0, seed=1)
    start = str(tmp_path / "first" / "encoder")
    continued = load_pretrained(train(_config(segments, tmp_path / "continued", init_encoder=start, **still)))
    fresh = load_pretrained(train(_config(segments, tmp_path / "fresh", **still)))
    continued, fresh = dict(continued.named_parameters()), dict(fresh.named_parameters())
    for name, weights in first.named_parameters():
        assert torch.allclose(continued[name], weights, atol=1e-6), name
    assert any(not torch.allclose(fresh[n], w, atol=1e-3) for n, w in first.named_parameters())
    saved = json.loads((tmp_path / "continued" / "config.json").read_text())
    assert saved["init_encoder"] == start
    # Another architecture: refused before the run folder is written, naming the folder and the option.
    with pytest.raises(ValueError, match=r"first/encoder: its encoder differs from this run's on \['dim'\]"):
        train(_config(segments, tmp_path / "other", init_encoder=start, encoder_options={**TINY, "dim": 32}))
    with pytest.raises(ValueError, match="absent"):
        train(_config(segments, tmp_path / "missing", init_encoder=str(tmp_path / "absent")))
    assert not (tmp_path / "other").exists() and not (tmp_path / "missing").exists()


@pytest.mark.slow
def test_refuses_to_resume_with_other_architecture_or_tasks(segments, tmp_path):
    train(_config(segments, tmp_path / "run", max_steps=2))
    with pytest.raises(ValueError, match="already holds a run"):
        train(_config(segments, tmp_path / "run", max_steps=2))
    with pytest.raises(ValueError, match="differs on .*encoder_options"):
        train(_config(segments, tmp_path / "run", encoder_options={"channels": [8, 8, 8], "dim": 16}, resume=True))
    with pytest.raises(ValueError, match="differs on .*tasks"):
        train(_config(segments, tmp_path / "run", tasks="energy", resume=True))


def test_bad_task_names_and_missing_labels_are_clear(segments, tmp_path):
    with pytest.raises(ValueError, match="choose from"):
        train(_config(segments, tmp_path / "a", tasks="energy,arousal"))
    with pytest.raises(ValueError, match="no 'speed_label' column"):
        train(_config(segments, tmp_path / "b", tasks="tests.pretext.test_train:SpeedTask"))


@pytest.mark.slow
def test_plugin_task_from_a_test_module(segments, tmp_path):
    train(_config(segments, tmp_path / "run", tasks="energy,tests.pretext.plugin_task:DurationTask"))
    assert "duration/loss" in _metrics(tmp_path / "run")[0]


@pytest.mark.slow
def test_each_task_loss_falls_when_overfitting_a_handful_of_segments(segments, tmp_path):
    table = load_segments(segments)
    few = table[table.face_mask & table.au_mask].head(8)
    few.to_parquet(tmp_path / "few.parquet")
    (tmp_path / "label_config.json").write_text((Path(segments) / "label_config.json").read_text())
    train(_config(tmp_path / "few.parquet", tmp_path / "run", max_steps=60, batch_size=8, val_fraction=0.0,
                  lr=3e-3, log_every=5, checkpoint_every=1000, max_seconds=3.0))
    records = [r for r in _metrics(tmp_path / "run") if r["split"] == "train"]
    for task in ("energy", "face", "au"):
        first, last = records[0][f"{task}/loss"], records[-1][f"{task}/loss"]
        assert last < 0.5 * first, (task, first, last)


def _launch(args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, str(REPO / "pretext" / "train.py"), *map(str, args)], cwd=REPO,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **kwargs)


def _cli_args(segments, out, steps, extra=()):
    return ["--data", segments, "--tasks", "energy,face,au", "--encoder", "cnn", "--out", out, "--encoder-options",
            json.dumps(TINY), "--max-steps", steps, "--batch-size", 4, "--num-workers", 0, "--checkpoint-every", 2,
            "--eval-every", 100, "--log-every", 1, "--max-seconds", 2.0, "--warmup-steps", 1, *extra]


@pytest.mark.slow
def test_kill_after_a_checkpoint_then_resume_continues_the_step_count(segments, tmp_path):
    out = tmp_path / "run"
    proc = _launch(_cli_args(segments, out, 400))
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "checkpoints" / "step_4").exists() and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = max(r["step"] for r in _metrics(out))
    checkpoints = sorted(int(p.name.split("_")[1]) for p in (out / "checkpoints").iterdir())
    resumed = _launch(_cli_args(segments, out, checkpoints[-1] + 4, ["--resume"]))
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-3000:]
    assert f"at step {checkpoints[-1]}" in stdout + stderr
    assert killed_at >= checkpoints[-1]
    # The resume truncates metrics.jsonl to the checkpoint step (steps logged after it and lost with the kill
    # are run again), so the log holds every step exactly once, continuing from the checkpoint, not from 0.
    steps = [r["step"] for r in _metrics(out) if r["split"] == "train"]
    assert steps == list(range(steps[0], checkpoints[-1] + 5))
    assert steps[0] <= 1


@pytest.mark.slow
def test_two_process_ddp_on_cpu_ends_with_identical_weights(segments, tmp_path):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(REPO / "pretext" / "train.py"), *map(str, _cli_args(segments, tmp_path / "run", 4))]
    result = subprocess.run(cmd, cwd=REPO, env={**os.environ, "ACCELERATE_USE_CPU": "1"}, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "weights identical on all 2 processes" in result.stdout + result.stderr
    assert (tmp_path / "run" / "encoder" / "model.safetensors").exists()


@pytest.mark.slow
def test_unreadable_audio_is_named_or_skipped_and_counted(segments, tmp_path):
    table = load_segments(segments)
    broken = table.copy()
    broken.loc[broken.index[:3], "audio_path"] = str(tmp_path / "gone.flac")
    broken.to_parquet(tmp_path / "broken.parquet")
    (tmp_path / "label_config.json").write_text((Path(segments) / "label_config.json").read_text())

    with pytest.raises(AudioError, match="gone.flac: cannot read audio"):
        train(_config(tmp_path / "broken.parquet", tmp_path / "strict", val_fraction=0.0))
    train(_config(tmp_path / "broken.parquet", tmp_path / "lenient", val_fraction=0.0, skip_bad_audio=True,
                  max_steps=6, batch_size=8))
    skipped = sum(r["skipped_bad_audio"] for r in _metrics(tmp_path / "lenient") if r["split"] == "train")
    assert skipped >= 3


@pytest.mark.slow
def test_bf16_run_logs_to_tensorboard(segments, tmp_path):
    """bf16 autocast (CPU here, CUDA elsewhere) trains to finite losses; metrics also reach TensorBoard."""
    pytest.importorskip("tensorboard", reason="tensorboard is in the [dev] extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    # Its own process: Accelerate fixes the precision once per process.
    args = [sys.executable, str(REPO / "pretext" / "train.py"), "--data", str(segments), "--encoder", "cnn",
            "--encoder-options", json.dumps(TINY), "--out", str(out), "--max-steps", "3", "--batch-size", "4",
            "--num-workers", "0", "--eval-every", "3", "--log-every", "1", "--max-seconds", "2",
            "--val-fraction", "0.2", "--warmup-steps", "1", "--mixed-precision", "bf16", "--report-to", "tensorboard"]
    subprocess.run(args, check=True, cwd=tmp_path, timeout=300)
    records = _metrics(out)
    train_losses = [r["energy/loss"] for r in records if r["split"] == "train"]
    assert len(train_losses) == 3 and all(0 < x < 10 for x in train_losses)
    events = list(out.rglob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event file under {out}"
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    scalars = accumulator.Tags()["scalars"]
    assert "train/energy/loss" in scalars and "val/au/loss" in scalars
    assert [e.step for e in accumulator.Scalars("train/energy/loss")] == [1, 2, 3]
