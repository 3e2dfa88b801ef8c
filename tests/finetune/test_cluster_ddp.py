"""DeepEmoCluster's fine-tuning loss (--cluster-weight) under two DDP processes (gloo on CPU) is the one-process run,
step for step: every round clusters the embeddings of all training rows (not one process's shard) and gives
every process the same pseudo-label per row, the cluster head is re-initialised alike on every process, and the
losses (each masked mean over the labelled items of the whole step, finetune.loop._step_shares) match.

Real speech: RAVDESS actors 1-4, angry and sad (64 clips; fold 0 trains on 2 actors, 32 clips, 8 labelled), a
tiny crnn encoder (no batch statistics and no dropout, so 2 processes x batch 4 compute what 1 process x batch
8 does), 2 epochs, re-clustered before each."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from finetune.recipes import prepare_ravdess, write_manifest
from finetune.train import parse_args, run
from tests.conftest import RAVDESS, _require

REPO = Path(__file__).resolve().parents[2]
TINY = {"channels_per_kernel": 4, "conv_channels": 8, "lstm_hidden": 8, "dim": 16}
ROUNDS = 2  # round 0 before epoch 1, round 1 after it
pytestmark = pytest.mark.slow  # two runs, one of them under accelerate launch


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    rows = prepare_ravdess(_require(RAVDESS, "the RAVDESS speech corpus"))
    rows = rows[(rows["speaker"].astype(int) <= 4) & rows["label"].isin(["angry", "sad"])]
    return write_manifest(rows, tmp_path_factory.mktemp("ravdess") / "ravdess_4.csv")


def _args(manifest: Path, out: Path, processes: int) -> list[str]:
    return list(map(str, [
        "--manifest", manifest, "--out", out, "--encoder", "crnn", "--encoder-options", json.dumps(TINY),
        "--epochs", ROUNDS, "--warmup-epochs", 0, "--patience", 100, "--num-folds", 4, "--fold", 0,
        "--dev-speakers", 1, "--batch-size", 8 // processes, "--max-seconds", 1.0, "--eval-max-seconds", 1.0,
        "--num-workers", 0, "--dropout", 0, "--lr", 3e-3, "--label-fraction", 0.25, "--cluster-weight", 1,
        "--cluster-k", 3, "--recluster-every", 1, "--no-progress", "--no-save-model"]))


def _run(manifest: Path, out: Path, processes: int) -> Path:
    if processes == 1:  # in this process, one thread as each launched process has (2 cores, busy)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            run(parse_args(_args(manifest, out, 1)))
        finally:
            torch.set_num_threads(threads)
    else:
        result = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                                 str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend",
                                 "no", str(REPO / "finetune" / "train.py"), *_args(manifest, out, processes)],
                                cwd=REPO, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
    return out / "fold0"


def test_two_processes_make_the_one_process_rounds_and_losses(manifest, tmp_path):
    one, two = _run(manifest, tmp_path / "one", 1), _run(manifest, tmp_path / "two", 2)
    rounds = {}
    for name, fold in (("one", one), ("two", two)):
        rounds[name] = [pd.read_parquet(fold / "clusters" / f"round_{n:03d}.parquet") for n in range(ROUNDS)]
        assert not (fold / "clusters" / f"round_{ROUNDS:03d}.json").exists()  # none after the last epoch
    for n, (a, b) in enumerate(zip(rounds["one"], rounds["two"])):
        # Every training row of the split, each with its own pseudo-label: the same row, the same cluster.
        assert len(a) == 32 and a["cluster_mask"].all() and set(a["cluster_label"]) == {0, 1, 2}
        assert a["segment_id"].tolist() == b["segment_id"].tolist()
        assert a["cluster_label"].tolist() == b["cluster_label"].tolist(), f"round {n}"
    # Round 1 clusters the trained model's embeddings, not round 0's again.
    assert rounds["one"][0]["cluster_label"].tolist() != rounds["one"][1]["cluster_label"].tolist()

    history = {name: [json.loads(line) for line in open(fold / "history.jsonl")] for name, fold in
               (("one", one), ("two", two))}
    print("1 process: ", [(h["train_loss"], h["dev_loss"]) for h in history["one"]])
    print("2 processes:", [(h["train_loss"], h["dev_loss"]) for h in history["two"]])
    assert len(history["one"]) == len(history["two"]) == ROUNDS
    for key in ("train_loss", "dev_loss"):  # the emotion loss on 8 labelled clips + the cluster loss on all 32
        assert [h[key] for h in history["two"]] == pytest.approx([h[key] for h in history["one"]], rel=1e-5)
    metrics = {name: json.loads((fold / "metrics.json").read_text()) for name, fold in (("one", one), ("two", two))}
    for a, b in zip(metrics["one"]["cluster_rounds"], metrics["two"]["cluster_rounds"], strict=True):
        assert a["cluster_sizes"] == b["cluster_sizes"] and a["inertia"] == pytest.approx(b["inertia"], rel=1e-5)
    assert metrics["two"]["train_items"] == 32 and metrics["two"]["train_labelled_items"] == 8
