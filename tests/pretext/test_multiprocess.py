"""Two DDP processes (gloo on CPU) train the schedule one process trains: 2 processes x batch 3 take the steps of
1 process x batch 6, at the same learning rate, step for step; validation counts each segment once (4
validation segments in batches of 3: Accelerate's sharding would pad the second process's batch with repeats)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pretext.test_train import REPO, TINY

STEPS = 8


def _args(segments, out, processes: int) -> list[str]:
    return list(map(str, ["--data", segments, "--tasks", "energy,face,au", "--encoder", "cnn", "--out", out,
            "--encoder-options", json.dumps(TINY), "--max-steps", STEPS, "--batch-size", 6 // processes,
            "--num-workers", 0, "--checkpoint-every", STEPS, "--eval-every", STEPS, "--log-every", 1,
            "--max-seconds", 1.0, "--warmup-steps", 3, "--lr", 1e-3, "--val-fraction", 0.2, "--report-to", "none"]))


def _records(out):
    return [json.loads(line) for line in open(Path(out) / "metrics.jsonl")]


@pytest.mark.slow
def test_two_processes_follow_the_one_process_schedule_step_for_step(segments, tmp_path):
    from pretext.train import parse_args, train

    train(parse_args(_args(segments, tmp_path / "one", 1)))  # one process: this one
    result = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                             "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                             str(REPO / "pretext" / "train.py"), *_args(segments, tmp_path / "two", 2)],
                            cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "ACCELERATE_USE_CPU": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    one, two, output = _records(tmp_path / "one"), _records(tmp_path / "two"), result.stdout + result.stderr
    lr = {n: [r["lr"] for r in records if r["split"] == "train"] for n, records in (("one", one), ("two", two))}
    print("lr, 1 process: ", lr["one"])
    print("lr, 2 processes:", lr["two"])
    assert len(lr["one"]) == len(lr["two"]) == STEPS
    assert lr["two"] == pytest.approx(lr["one"], rel=1e-12, abs=0)
    assert lr["one"][-1] == 0.0 and max(lr["one"]) == pytest.approx(1e-3)  # warm-up to the peak, cosine to 0
    scheduler = json.loads((tmp_path / "two" / "checkpoints" / f"step_{STEPS}" / "scheduler.json").read_text())
    assert scheduler["last_epoch"] == STEPS
    # Validation shards are padded to equal batches on every process; the padding is not scored twice.
    val = {n: [r for r in records if r["split"] == "val"] for n, records in (("one", one), ("two", two))}
    assert val["one"][-1]["segments"] == val["two"][-1]["segments"] > 0
    assert output.count("encoder exported") == 1


@pytest.mark.slow
def test_gradient_accumulation_steps_the_schedule_once_per_optimizer_step(segments, tmp_path):
    from avpretext.common.schedules import warmup_cosine
    from pretext.train import train
    from tests.pretext.test_train import _config

    train(_config(segments, tmp_path / "run", max_steps=4, batch_size=2, grad_accum=2, warmup_steps=2, lr=1e-3,
                  checkpoint_every=4))
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    lr = [r["lr"] for r in records if r["split"] == "train"]
    assert lr == pytest.approx([1e-3 * warmup_cosine(step, 2, 4) for step in range(1, 5)], rel=1e-12, abs=0)
    scheduler = json.loads((tmp_path / "run" / "checkpoints" / "step_4" / "scheduler.json").read_text())
    assert scheduler["last_epoch"] == 4
