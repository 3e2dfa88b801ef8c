"""The run lock (avpretext.common.run_lock) against real processes: live, killed, zombie, a reused pid, another
host's lock with a fresh or an old heartbeat, and several processes racing for one stale lock."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avpretext.common.processes import process_state
from avpretext.common.run_lock import LOCK_FILE, RunLock, RunLockedError, owner_record

REPO = Path(__file__).resolve().parents[2]

# Takes the lock of argv[1], says "taken" or "refused: ...", then holds it until its stdin closes.
HOLDER = """
import sys
from avpretext.common.run_lock import RunLock, RunLockedError
lock = RunLock(sys.argv[1])
try:
    lock.acquire()
except RunLockedError as err:
    print("refused:", err, flush=True)
    sys.exit(0)
print("taken", flush=True)
sys.stdin.read()
lock.release()
"""


def _holder(folder) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc


def _wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_a_live_run_holds_the_folder_and_releases_it_when_it_ends(tmp_path):
    holder = _holder(tmp_path / "run")
    assert holder.stdout.readline().strip() == "taken"
    with pytest.raises(RunLockedError, match=rf"run is in use by a live run \(pid {holder.pid} on "):
        RunLock(tmp_path / "run").acquire()
    holder.communicate("")  # ends normally: the lock file is removed
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    with RunLock(tmp_path / "run"):
        assert json.loads((tmp_path / "run" / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_killed_runs_lock_is_taken_over(tmp_path):
    holder = _holder(tmp_path / "run")
    assert holder.stdout.readline().strip() == "taken"
    holder.kill()
    holder.wait()
    assert (tmp_path / "run" / LOCK_FILE).exists()  # SIGKILL leaves it
    with RunLock(tmp_path / "run"):
        pass


def test_a_zombie_runs_lock_is_taken_over(tmp_path):
    holder = _holder(tmp_path / "run")
    assert holder.stdout.readline().strip() == "taken"
    os.kill(holder.pid, signal.SIGKILL)  # not reaped: the pid stays, as a zombie, until wait()
    _wait_until(lambda: process_state(holder.pid)[0] == "zombie", "the killed holder is a zombie")
    try:
        with RunLock(tmp_path / "run"):
            pass
    finally:
        holder.wait()


def test_a_lock_whose_pid_now_belongs_to_another_process_is_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps(owner_record() | {"start_ticks": process_state(os.getpid())[1] - 1}))
    with RunLock(tmp_path):
        pass


def test_another_hosts_lock_is_respected_until_its_heartbeat_is_old(tmp_path):
    lock_file = tmp_path / LOCK_FILE
    lock_file.write_text(json.dumps(owner_record() | {"host": "other-host.example", "pid": 12345}))
    with pytest.raises(RunLockedError, match="pid 12345 on other-host.example.*heartbeat"):
        RunLock(tmp_path, stale_after_s=300).acquire()
    old = time.time() - 301
    os.utime(lock_file, (old, old))
    with RunLock(tmp_path, stale_after_s=300):
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()


def test_the_heartbeat_refreshes_the_lock_and_notices_a_take_over(tmp_path):
    lock = RunLock(tmp_path, heartbeat_s=0.05)
    lock.acquire()
    try:
        old = time.time() - 1000
        os.utime(lock.path, (old, old))
        _wait_until(lambda: lock.path.stat().st_mtime > old + 900, "the heartbeat touches the lock")
        lock.path.unlink()  # another run judged this one dead and took the folder
        lock.path.write_text("{}")
        _wait_until(lambda: lock.lost, "the heartbeat sees the lock replaced")
        with pytest.raises(RuntimeError, match="taken over by another run"):
            lock.check()
    finally:
        lock.release()
    assert lock.path.read_text() == "{}"  # the other run's lock is left alone


def test_processes_racing_for_a_stale_lock_let_exactly_one_in(tmp_path):
    dead = _holder(tmp_path)
    assert dead.stdout.readline().strip() == "taken"
    dead.kill()
    dead.wait()
    racers = [_holder(tmp_path) for _ in range(6)]
    answers = [proc.stdout.readline().strip() for proc in racers]
    for proc in racers:
        proc.communicate("")
    assert sum(answer == "taken" for answer in answers) == 1, answers
    assert all(answer.startswith("refused:") for answer in answers if answer != "taken"), answers
