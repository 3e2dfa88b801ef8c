"""Fine-tuning under two DDP processes (gloo on CPU) follows the one-process learning-rate schedule: 2 processes x
batch 4 take the steps of 1 process x batch 8, and the lr logged at every epoch is the same."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetune.train import parse_args, run

REPO = Path(__file__).resolve().parents[2]
TINY = {"channels": [8, 8, 16], "dim": 16, "n_mels": 40}
EPOCHS = 4
pytestmark = pytest.mark.slow  # two runs, one of them under accelerate launch


def _history(manifest, out: Path, processes: int) -> list[dict]:
    args = ["--manifest", manifest, "--out", out, "--encoder-options", json.dumps(TINY), "--epochs", EPOCHS,
            "--warmup-epochs", 1, "--patience", 100, "--num-folds", 3, "--fold", 0, "--dev-speakers", 1,
            "--batch-size", 8 // processes, "--max-seconds", 1.0, "--eval-max-seconds", 1.0, "--num-workers", 0,
            "--no-progress", "--no-save-model"]
    if processes == 1:  # in this process
        run(parse_args(list(map(str, args))))
    else:
        result = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                                 str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend",
                                 "no", str(REPO / "finetune" / "train.py"), *map(str, args)],
                                cwd=REPO, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "ACCELERATE_USE_CPU": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in open(out / "fold0" / "history.jsonl")]


def test_two_processes_follow_the_one_process_schedule(manifest, tmp_path):
    one = [h["lr"] for h in _history(manifest, tmp_path / "one", 1)]
    two = [h["lr"] for h in _history(manifest, tmp_path / "two", 2)]
    print("lr per epoch, 1 process: ", one)
    print("lr per epoch, 2 processes:", two)
    assert len(one) == len(two) == EPOCHS
    assert two == pytest.approx(one, rel=1e-12, abs=0)
    assert one[-1] == 0.0 and one[1] > 0  # cosine decay to 0 at the last epoch
