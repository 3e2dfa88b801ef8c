"""The README's path as a new user walks it: the console scripts, run from working folders of their own with
relative paths, each step reading what the previous one wrote (videos -> extract -> label -> pretraining from
another folder -> prepare -> fine-tune -> predict)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avpretext import synthetic

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # the console scripts installed beside this interpreter
TINY = json.dumps({"channels": [8, 8, 16], "dim": 16})


def _step(command: str, *args, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    script = BIN / command
    if not script.exists():
        pytest.skip(f"console script {command} not installed beside {sys.executable} (pip install -e .)")
    result = subprocess.run([str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} {' '.join(map(str, args))} (in {cwd}):\n{result.stderr[-3000:]}"
    return result


def test_the_readme_path_from_other_working_folders(synthetic_corpus, face_model, tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(synthetic_corpus, work / "videos")  # the user's own short talking-face videos
    synthetic.write_labeled_speech(work / "speech", speakers=6, per_class=3, classes=("neutral", "angry"),
                                   duration_s=1.0)

    extract = _step("data_prep", "extract", "videos", "--out", "ex_w2", "--workers", 2, "--fps", 5,
                    "--face-model", face_model, "--no-progress", cwd=work)
    assert "done 4, skipped (already done) 0, failed 0" in extract.stdout
    label = _step("data_prep", "label", "ex_w2", "--no-progress", cwd=work)
    assert "wrote ex_w2/segments.parquet" in label.stdout

    # Pretraining from another folder reads the label table's audio (relative to the table, not to `work`).
    _step("avpretext-pretrain", "--data", "../work/ex_w2", "--tasks", "energy", "--out", "../work/run",
          "--encoder-options", TINY, "--max-steps", 3, "--batch-size", 2, "--num-workers", 0, "--val-fraction", 0,
          "--max-seconds", 1.0, "--warmup-steps", 1, "--log-every", 1, "--report-to", "none", cwd=elsewhere)
    assert (work / "run" / "encoder").is_dir()

    _step("avpretext-prepare", "csv", "speech/manifest.csv", "--out", "labels.csv", cwd=work)
    with open(work / "labels.csv", newline="") as f:
        assert all(Path(row["path"]).is_file() for row in csv.DictReader(f))
    _step("avpretext-finetune", "--manifest", "labels.csv", "--init", "run", "--out", "ft", "--epochs", 1,
          "--num-folds", 3, "--fold", 0, "--dev-speakers", 1, "--num-workers", 0, "--no-progress", cwd=work)
    assert (work / "ft" / "metrics.json").is_file()
    (model,) = [p for p in (work / "ft").glob("*/model") if p.is_dir()]

    _step("avpretext-predict", os.path.relpath(model, elsewhere), "../work/speech/spk01", "--out", "predictions.csv",
          cwd=elsewhere)
    with open(elsewhere / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and all(row["prediction"] in ("angry", "neutral") for row in rows), rows[:2]
