"""``data_prep extract --executor ray`` on a real local Ray cluster (2 CPUs here): the same outputs as
``--workers 2``, a killed worker or driver loses nothing, a worker that keeps dying fails only its item."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from data_prep import store
from data_prep.executors import RayExecutor
from .helpers import assert_same_outputs, item_ids, run_extract

pytest.importorskip("ray", reason="Ray is not installed; install the extra: pip install 'avpretext[ray]'")
pytestmark = pytest.mark.slow  # a local Ray cluster per test


@pytest.fixture(scope="module")
def reference(parallel_extraction) -> Path:
    """The corpus extracted by the process pool (``--workers 2``), shared with tests/data_prep/test_extract.py."""
    return parallel_extraction


def _extract_cmd(corpus, out, face_model, *extra) -> list[str]:
    return [sys.executable, "-m", "data_prep", "extract", str(corpus), "--out", str(out), "--face-model",
            str(face_model), "--no-progress", "--executor", "ray", "--workers", "2", *extra]


def _ray_processes(title_prefix: str = "ray::") -> list[int]:
    """PIDs of processes whose title starts with ``title_prefix``: Ray sets an actor process's title to
    ``ray::ItemWorker`` and, while it runs a method, ``ray::ItemWorker.run``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if proc.name.isdigit() and title.startswith(title_prefix):
            pids.append(int(proc.name))
    return pids


def _ray_workers_running_an_item() -> list[int]:
    return _ray_processes("ray::ItemWorker.run")


def _work_folder_writers(out: Path) -> set[int]:
    """PIDs that own an item folder in ``out/.tmp`` (named ``<id>.<host>.<pid>-<start>.<random>``)."""
    tmp = out / store.TMP_DIR
    names = [p.name for p in tmp.iterdir()] if tmp.is_dir() else []
    return {int(name.rsplit(".", 2)[1].split("-")[0]) for name in names if name.count(".") >= 3}


def _wait_for_orphaned_actors(timeout: float = 120.0) -> None:
    """Actor processes can outlive a SIGKILLed driver and its cluster for a moment (Ray does not keep them in
    the driver's process group), and may publish the item in hand meanwhile: atomically, so nothing is lost,
    but the count of finished items is only settled once they are gone. Those still alive at ``timeout`` are
    killed."""
    deadline = time.time() + timeout
    while _ray_processes() and time.time() < deadline:
        time.sleep(0.1)
    for pid in _ray_processes():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_ray_executor_gives_the_outputs_of_two_processes(synthetic_corpus, face_model, reference, tmp_path):
    summary = run_extract(synthetic_corpus, tmp_path / "ray", face_model, workers=2, executor="ray")
    assert summary.done == 4 and not summary.failed
    assert_same_outputs(reference, tmp_path / "ray")
    again = run_extract(synthetic_corpus, tmp_path / "ray", face_model, workers=2, executor="ray")
    assert (again.done, again.skipped) == (0, 4)  # resumable exactly like the pool


def test_a_ray_worker_killed_mid_item_loses_nothing(synthetic_corpus, face_model, reference, tmp_path):
    out = tmp_path / "killed_worker"
    proc = subprocess.Popen(_extract_cmd(synthetic_corpus, out, face_model), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, deadline = None, time.time() + 180
    while killed is None and time.time() < deadline and proc.poll() is None:
        # A worker whose item folder exists in .tmp: killed mid-item, it leaves that folder behind, which the
        # run must remove (its writer is dead, perhaps an unreaped zombie) once the item was redone.
        mid_item = sorted(set(_ray_workers_running_an_item()) & _work_folder_writers(out))
        if mid_item:
            killed = mid_item[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, f"no Ray worker was seen handling an item: {stderr[-2000:]}"
    assert proc.returncode == 0, stderr[-3000:]
    assert "worker died while handling" in stderr and "handing it out again" in stderr, stderr[-3000:]
    assert "done 4, skipped (already done) 0, failed 0" in stdout
    assert not any((out / store.TMP_DIR).iterdir())
    assert_same_outputs(reference, out)


def test_a_killed_driver_is_resumed_to_identical_outputs(synthetic_corpus, face_model, reference, tmp_path):
    out = tmp_path / "killed_driver"
    cmd = _extract_cmd(synthetic_corpus, out, face_model)
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline and not item_ids(out) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local cluster it started
    proc.wait()
    _wait_for_orphaned_actors()
    finished_before = item_ids(out)
    assert 1 <= len(finished_before) < 4
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"skipped (already done) {len(finished_before)}" in rerun.stdout
    assert_same_outputs(reference, out)


def test_an_item_whose_worker_always_dies_is_failed_with_the_reason_and_others_finish():
    def init():  # closures: Ray pickles them by value, so the test module need not be importable by workers
        return "state"

    def process(state, item):
        if item.id == "poison":
            os._exit(3)  # the worker process dies, as under the OOM killer
        return {"state": state, "pid": os.getpid()}

    items = [SimpleNamespace(id=name) for name in ("a", "poison", "b", "c")]
    logged = []
    executor = RayExecutor(workers=2, max_attempts=2, log=logged.append)
    results = {r.item_id: r for r in executor.map(items, process, init)}
    assert set(results) == {"a", "poison", "b", "c"}
    assert all(results[name].ok and results[name].summary["state"] == "state" for name in "abc")
    assert not results["poison"].ok
    assert "its worker died 2 times while handling it" in results["poison"].error
    assert results["poison"].summary["type"] == "WorkerDied"
    assert len(logged) == 1 and "poison (attempt 1/2" in logged[0]
