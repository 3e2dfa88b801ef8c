"""pretext/train.py as a user runs it: a mistake is one line naming the file and reason (exit 2, no traceback),
nothing is written before it is found, and too little data never hangs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from avpretext.common.audio import AudioError
from avpretext.common.batches import batches_per_process, train_drop_last
from pretext.train import main
from tests.conftest import run_main

REPO = Path(__file__).resolve().parents[2]
TINY = {"channels": [8, 8, 16], "dim": 16}
TIMEOUT = 240  # a hang would run into it; every run here ends in seconds


def _table_copy(segments, folder: Path, rows=None, **columns) -> Path:
    """A labelled folder in ``folder`` holding (some of) the fixture's segments: parquet + label_config.json."""
    table = pd.read_parquet(Path(segments) / "segments.parquet")
    table = table.head(rows) if rows is not None else table
    for name, value in columns.items():
        table[name] = value
    folder.mkdir(parents=True, exist_ok=True)
    table.to_parquet(folder / "segments.parquet")
    (folder / "label_config.json").write_text((Path(segments) / "label_config.json").read_text())
    return folder


def _args(data, out, *extra):
    return ["--data", data, "--out", out, "--tasks", "energy,face,au", "--encoder-options", json.dumps(TINY),
            "--max-steps", 2, "--batch-size", 4, "--num-workers", 0, "--val-fraction", 0, "--max-seconds", 1.0,
            "--warmup-steps", 1, "--log-every", 1, "--report-to", "none", *extra]


def _run(args, launcher=(), env=None):
    cmd = [sys.executable, *launcher, str(REPO / "pretext" / "train.py"), *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, **(env or {})})


def assert_user_error(result, *expected: str) -> str:
    """Exit 2, no traceback, one ``error:`` line on stderr holding every expected piece."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("pretext/train.py: error: "), result.stderr[-3000:]
    for piece in expected:
        assert piece in errors[0], (piece, errors[0])
    return errors[0]


@pytest.mark.slow
def test_missing_unlabelled_and_empty_data_and_an_out_that_is_a_file(segments, tmp_path, capsys):
    # The command line itself once; the other mistakes through the same main() in this process.
    assert_user_error(_run(_args(tmp_path / "nowhere", tmp_path / "a")), f"{tmp_path / 'nowhere'}: not found")
    (tmp_path / "unlabelled").mkdir()
    assert_user_error(run_main(main, _args(tmp_path / "unlabelled", tmp_path / "b"), capsys), "no segments.parquet",
                      "data_prep label")
    empty = _table_copy(segments, tmp_path / "empty", rows=0)
    assert_user_error(run_main(main, _args(empty, tmp_path / "c"), capsys),
                      f"{empty / 'segments.parquet'}: the table has 0 segments", "label_stats.json")
    assert_user_error(run_main(main, [*_args(segments, tmp_path / "d"), "--val-fraction", 1], capsys),
                      "training split", "has 0 item(s)", "--val-fraction")
    (tmp_path / "file").write_text("not a folder")
    assert_user_error(run_main(main, _args(segments, tmp_path / "file"), capsys), f"{tmp_path / 'file'}",
                      "existing file")
    assert not any((tmp_path / name).exists() for name in "abcd")


@pytest.mark.slow
def test_a_mistake_writes_nothing_so_the_corrected_command_runs(segments, tmp_path, capsys):
    out = tmp_path / "run"
    for extra, expected in ((["--tasks", "energy,arousl"], "arousl"),
                            (["--task-weights", '{"enrgy": 2}'], "enrgy"),
                            (["--task-weights", '{"energy": "high"}'], "'energy' must be a number"),
                            (["--encoder-options", '{"chanels": [8]}'], "chanels"),
                            (["--encoder", "cnnn"], "cnnn")):
        assert_user_error(run_main(main, [*_args(segments, out), *extra], capsys), expected)
        assert not out.exists(), extra  # no config.json that would refuse the corrected command
    result = _run(_args(segments, out))  # the corrected command as the user runs it
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "encoder" / "model.safetensors").exists()


@pytest.mark.slow
def test_unreadable_audio_read_by_loader_workers_is_one_line(segments, tmp_path):
    gone = tmp_path / "gone.flac"
    data = _table_copy(segments, tmp_path / "broken", audio_path=str(gone))
    assert_user_error(_run(_args(data, tmp_path / "run", "--num-workers", 1)),
                      f"{gone}: cannot read audio (file not found)")


def test_audio_error_survives_the_loader_worker_round_trip():
    """torch re-raises a worker's exception as ``type(message)``, the message ending in our one line."""
    original = AudioError("/data/a b.flac", "LibsndfileError: Error opening\n'/data/a b.flac'")
    worker_message = ("Caught AudioError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                      f"last):\n  File \"x.py\", line 1, in <module>\navpretext.common.audio.AudioError: {original}\n")
    rebuilt = AudioError(worker_message)
    assert (rebuilt.path, rebuilt.reason) == (original.path, original.reason)
    assert str(rebuilt) == str(original) == "/data/a b.flac: cannot read audio (LibsndfileError: Error opening " \
                                            "'/data/a b.flac')"


@pytest.mark.parametrize("items,batch,processes,drop_last,batches",
                         [(5, 16, 1, True, 0), (5, 16, 1, False, 1), (20, 16, 2, True, 0), (20, 16, 2, False, 1),
                          (40, 16, 2, True, 1), (0, 4, 1, False, 0)])
def test_batches_per_process_follows_accelerate_sharding(items, batch, processes, drop_last, batches):
    assert batches_per_process(items, batch, processes, drop_last) == batches
    assert train_drop_last(items, batch, processes) == (batches_per_process(items, batch, processes, True) > 0)


@pytest.mark.slow
def test_fewer_segments_than_a_batch_trains_instead_of_hanging(segments, tmp_path):
    """5 segments, batch 16: drop_last gave an empty epoch and the loop spun forever without a step."""
    few = _table_copy(segments, tmp_path / "few", rows=5)
    result = _run([*_args(few, tmp_path / "run"), "--batch-size", 16])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "only 5 segments for --batch-size 16 x 1 process" in result.stdout + result.stderr
    steps = [json.loads(line)["step"] for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert steps == [1, 2]


@pytest.mark.slow
def test_fewer_segments_than_two_processes_batches_trains_instead_of_hanging(segments, tmp_path):
    few = _table_copy(segments, tmp_path / "few", rows=5)
    launcher = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no"]
    result = _run(_args(few, tmp_path / "run"), launcher, env={"ACCELERATE_USE_CPU": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "weights identical on all 2 processes" in result.stdout + result.stderr
