"""A plug-in task (``module:Class`` or ``path/to/file.py:Class``) in the user's own folder resolves alike under
every entry point: the ``data_prep`` console script, ``python -m data_prep``, the ``avpretext-pretrain`` console
script and ``accelerate launch pretext/train.py``. Each runs for real from a temporary working folder that
holds the plug-in, which is not installed and not on ``PYTHONPATH``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avpretext import synthetic

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = json.dumps({"channels": [8, 8, 16], "dim": 16})
TIMEOUT = 300


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A user's working folder: a package folder ``mypkg/`` (no ``__init__.py``) and a loose file
    ``plugins/duration.py``, both the README's example task, and a label config naming the package's."""
    work = tmp_path_factory.mktemp("work")
    (work / "mypkg").mkdir()
    (work / "plugins").mkdir()
    shutil.copy(REPO / "tests" / "pretext" / "plugin_task.py", work / "mypkg" / "mytask.py")
    shutil.copy(REPO / "tests" / "pretext" / "plugin_task.py", work / "plugins" / "duration.py")
    (work / "label.toml").write_text('tasks = ["energy", "mypkg.mytask:DurationTask"]\n')
    return work


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """A label folder with energy and duration labels (the same columns a label run with the plug-in writes)."""
    return synthetic.write_segment_table(tmp_path_factory.mktemp("labels"),
                                         tasks=("energy", "tests.pretext.plugin_task:DurationTask"))


def _run(args, cwd: Path, env=None):
    # Without the repository on PYTHONPATH: only the installed package and the working folder are there.
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | (env or {})
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                          env=environ)


def _pretrain_args(labelled: Path, tasks: str, out: Path) -> list:
    return ["--data", labelled, "--tasks", tasks, "--out", out, "--encoder-options", TINY, "--max-steps", 2,
            "--warmup-steps", 1, "--batch-size", 4, "--eval-every", 2, "--log-every", 1, "--checkpoint-every", 100,
            "--num-workers", 0, "--report-to", "none"]


@pytest.mark.slow
def test_the_label_config_resolves_a_plugin_beside_the_user_under_both_data_prep_entry_points(work):
    console = _run([BIN / "data_prep", "label", "--print-config", "--config", "label.toml"], work)
    assert console.returncode == 0, console.stderr
    assert '\n["mypkg.mytask:DurationTask"]\n' in console.stdout and 'group = "corpus"' in console.stdout  # its section
    assert 'tasks = ["energy", "mypkg.mytask:DurationTask"]' in console.stdout
    module = _run([sys.executable, "-m", "data_prep", "label", "--print-config", "--config", "label.toml"], work)
    assert module.returncode == 0 and module.stdout == console.stdout, module.stderr


@pytest.mark.slow
def test_pretraining_trains_a_plugin_from_the_working_folder(work, labelled):
    console = _run([BIN / "avpretext-pretrain",
                    *_pretrain_args(labelled, "energy,mypkg.mytask:DurationTask", work / "run_console")], work)
    assert console.returncode == 0, console.stderr[-3000:]
    records = [json.loads(line) for line in (work / "run_console" / "metrics.jsonl").read_text().splitlines()]
    assert any("duration" in json.dumps(r) for r in records)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no"]
    launched = _run([*launcher, REPO / "pretext" / "train.py",
                     *_pretrain_args(labelled, "energy,plugins/duration.py:DurationTask", work / "run_launch")],
                    work, env={"ACCELERATE_USE_CPU": "1"})
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert (work / "run_launch" / "encoder" / "model.safetensors").is_file()


@pytest.mark.slow
def test_a_plugin_that_cannot_be_found_is_one_line_naming_where_it_was_looked_for(work, labelled):
    result = _run([BIN / "avpretext-pretrain", *_pretrain_args(labelled, "energy,nopkg.tasks:Task", work / "none")],
                  work)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("avpretext-pretrain: error: "), result.stderr
    assert "'nopkg.tasks'" in result.stderr and str(work) in result.stderr
    assert not (work / "none").exists()
