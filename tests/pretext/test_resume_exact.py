"""A run SIGKILLed after a checkpoint and resumed equals the uninterrupted run: the same losses at every step
after the checkpoint, each step logged once, the same final weights (one process and 2-process DDP on CPU,
0 and 2 loader workers)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.pretext.test_train import REPO, TINY

STEPS, EVERY = 16, 3


def _command(segments, out, processes, workers, resume=False):
    args = ["--data", segments, "--tasks", "energy,face,au", "--encoder", "cnn", "--out", out,
            "--encoder-options", json.dumps(TINY), "--max-steps", STEPS, "--batch-size", 4, "--num-workers",
            workers, "--checkpoint-every", EVERY, "--eval-every", 5, "--log-every", 1, "--max-seconds", 2.0,
            "--warmup-steps", 2, "--lr", 3e-3, "--report-to", "none", *(["--resume"] if resume else [])]
    script = [str(REPO / "pretext" / "train.py"), *map(str, args)]
    if processes == 1:
        return [sys.executable, *script]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *script]


def _run(cmd):
    result = subprocess.run(cmd, cwd=REPO, env={**os.environ, "ACCELERATE_USE_CPU": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc): the DDP workers of ``accelerate launch`` run in their
    own process groups, so killing the launcher's group alone would leave them training."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


_REFERENCES: dict = {}


def _reference(segments, tmp_path_factory, processes):
    """The uninterrupted run, once per process count (loader workers do not change what is computed)."""
    if processes not in _REFERENCES:
        out = tmp_path_factory.mktemp(f"reference{processes}") / "run"
        _run(_command(segments, out, processes, 0))
        _REFERENCES[processes] = out
    return _REFERENCES[processes]


def _train_losses(out):
    records = [json.loads(line) for line in open(Path(out) / "metrics.jsonl")]
    return {r["step"]: r for r in records if r["split"] == "train"}, [r["step"] for r in records
                                                                      if r["split"] == "train"]


@pytest.mark.slow
@pytest.mark.parametrize("processes,workers", [(1, 0), (1, 2), (2, 0), (2, 2)])
def test_killed_and_resumed_run_equals_the_uninterrupted_one(segments, tmp_path, tmp_path_factory, processes,
                                                             workers):
    reference, out = _reference(segments, tmp_path_factory, processes), tmp_path / "run"

    proc = subprocess.Popen(_command(segments, out, processes, workers), cwd=REPO, start_new_session=True,
                            env={**os.environ, "ACCELERATE_USE_CPU": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "checkpoints" / f"step_{EVERY}").exists() and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read()[-2000:]
    for pid in _descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    resumed_from = max(int(p.name.split("_")[1]) for p in (out / "checkpoints").glob("step_*"))
    assert resumed_from < STEPS
    assert f"at step {resumed_from}" in _run(_command(segments, out, processes, workers, resume=True))

    expected, _ = _train_losses(reference)
    got, steps = _train_losses(out)
    assert steps == list(range(1, STEPS + 1))  # each step once, none lost, none repeated
    for step in range(resumed_from + 1, STEPS + 1):
        for key in ("energy/loss", "face/loss", "au/loss", "lr"):
            assert got[step][key] == pytest.approx(expected[step][key], abs=1e-6, rel=0), (step, key)
    a, b = load_file(reference / "encoder" / "model.safetensors"), load_file(out / "encoder" / "model.safetensors")
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"processes={processes} workers={workers} resumed from step {resumed_from}: max abs weight diff {diff}")
    assert diff <= 1e-6
