"""die_with_launcher: a launched worker (torchrun's environment) ends when its launcher is SIGKILLed; a process
outside a launcher is left alone. Real processes: launcher -> worker, the launcher killed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avpretext.common.processes import process_state

REPO = Path(__file__).resolve().parents[2]
# Makes its request, then says so by creating the file argv[1].
WORKER = ("import sys, time; from pathlib import Path; from avpretext.common.distributed import die_with_launcher; "
          "die_with_launcher(); Path(sys.argv[1]).touch(); time.sleep(120)")
# Starts the worker in a session of its own (as torch's launcher does), prints its pid, then waits.
LAUNCHER = f"""
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", {WORKER!r}, sys.argv[1]], start_new_session=True)
print(worker.pid, flush=True)
time.sleep(120)
"""


def _worker_after_launcher_killed(env: dict, ready: Path, wait_s: float) -> tuple[int, str]:
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(ready)], cwd=REPO, stdout=subprocess.PIPE,
                                text=True, env={k: v for k, v in os.environ.items()
                                                if k not in ("LOCAL_RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID")} | env)
    worker = int(launcher.stdout.readline())
    deadline = time.time() + 120
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert ready.exists(), "the worker did not start"
    launcher.kill()
    launcher.wait()
    deadline = time.time() + wait_s
    while time.time() < deadline and process_state(worker)[0] == "alive":
        time.sleep(0.05)
    state = process_state(worker)[0]
    if state == "alive":
        os.kill(worker, signal.SIGKILL)
    return worker, state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_launched_worker_ends_with_its_killed_launcher(tmp_path):
    _, state = _worker_after_launcher_killed({"LOCAL_RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "t"},
                                             tmp_path / "ready", wait_s=60)
    assert state != "alive"


def test_a_process_outside_a_launcher_is_left_alone(tmp_path):
    _, state = _worker_after_launcher_killed({}, tmp_path / "ready", wait_s=2)
    assert state == "alive"
