"""The executors as objects: one registry of names behind ``--executor`` and :func:`make_executor`, and the
process pool's per-item error capture (the Ray executor's is in test_ray_executor.py, which needs Ray)."""
from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from data_prep.executors import EXECUTORS, ExecutorUnavailable, ProcessExecutor, make_executor
from data_prep.label.cli import main

from . import executor_jobs


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_the_command_line_offers_exactly_the_registry(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["extract", "--help"])
    assert exit_.value.code == 0
    assert "--executor {" + ",".join(EXECUTORS) + "}" in capsys.readouterr().out
    assert all(cls.name == name for name, cls in EXECUTORS.items())
    assert isinstance(make_executor(ProcessExecutor.name, workers=2), ProcessExecutor)


def test_an_unknown_executor_is_one_clear_line(tmp_path, capsys):
    with pytest.raises(ValueError) as err:
        make_executor("dask")
    line = _one_line(str(err.value))
    assert "'dask'" in line and all(name in line for name in EXECUTORS)
    with pytest.raises(SystemExit) as exit_:
        main(["extract", str(tmp_path), "--out", str(tmp_path / "out"), "--executor", "dask"])
    assert exit_.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert "'dask'" in line and all(name in line for name in EXECUTORS)


def test_ray_address_without_executor_ray_is_refused_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(ValueError, match="--ray-address auto: needs --executor ray"):
        make_executor("processes", workers=2, ray_address="auto")
    out = tmp_path / "out"
    assert main(["extract", str(tmp_path), "--out", str(out), "--ray-address", "auto"]) == 2
    assert "--ray-address auto: needs --executor ray" in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_executor_ray_without_ray_installed_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as without the extra
    with pytest.raises(ExecutorUnavailable, match=r"pip install 'avpretext\[ray\]'"):
        make_executor("ray")
    out = tmp_path / "out"
    assert main(["extract", str(tmp_path), "--out", str(out), "--executor", "ray"]) == 2
    assert "pip install 'avpretext[ray]'" in _one_line(capsys.readouterr().err)
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_item_is_recorded_with_its_reason_and_the_others_finish(workers):
    items = [SimpleNamespace(id=name) for name in ("a", "bad", "b")]
    results = {r.item_id: r for r in ProcessExecutor(workers).map(items, executor_jobs.process, executor_jobs.init)}
    assert set(results) == {"a", "bad", "b"}
    assert all(results[name].ok and results[name].summary == {"state": "model", "id": name} for name in "ab")
    assert not results["bad"].ok and results["bad"].error == "bad: cannot be read"
    assert results["bad"].summary["type"] == "ValueError"


def test_a_pool_worker_that_cannot_start_fails_each_item_with_the_reason():
    items = [SimpleNamespace(id=name) for name in ("a", "b", "c")]
    results = list(ProcessExecutor(2).map(items, executor_jobs.process, executor_jobs.init_fails))
    assert sorted(r.item_id for r in results) == ["a", "b", "c"]
    assert all(not r.ok and r.error == "worker start-up failed: face model missing" for r in results)
