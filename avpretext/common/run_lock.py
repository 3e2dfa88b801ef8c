"""One live run per output folder: a lock file that a second live run cannot take and a dead run's does not block.

``FOLDER/run.lock`` is created with ``O_CREAT | O_EXCL`` (atomic on local disks and on NFS v3+) and holds its
owner: host, boot id, pid namespace, pid, the process's start time (kernel ticks since boot) and the command.
Its modification time is the heartbeat: a thread touches it every :data:`HEARTBEAT_S` seconds while the run
lives. A lock is stale, and is taken over, when

* its owner ran on this machine (same host name, boot and pid namespace) and that pid is gone, is a zombie,
  or is now another process (another start time): exact, no waiting;
* its owner ran on this host before a reboot;
* its owner ran elsewhere (another host sharing the storage, or another container) and the heartbeat is older
  than :data:`STALE_AFTER_S` (clocks of the hosts are assumed synchronised to well within that).

A stale lock is moved aside under a unique name and checked to be the one judged stale before it is deleted;
a lock another run took in between is put back. The lock is released (deleted) when the run ends; a run
killed with SIGKILL leaves it, and the next run takes it over as above.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from avpretext.common.processes import process_state

LOCK_FILE = "run.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


class RunLockedError(ValueError):
    """The folder is in use by a live run: ``str()`` is one line naming the folder, the owner and what to do."""


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def machine_identity() -> dict:
    """What makes two processes' pids comparable: the same host name, kernel boot and pid namespace."""
    boot = (_read_text("/proc/sys/kernel/random/boot_id") or "").strip()
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return {"host": socket.gethostname(), "boot_id": boot, "pid_namespace": namespace}


def owner_record() -> dict:
    """This process as a lock owner."""
    return {**machine_identity(), "pid": os.getpid(), "start_ticks": process_state(os.getpid())[1],
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "token": secrets.token_hex(8),
            "command": " ".join(sys.argv)[:300]}


def stale_reason(owner: dict | None, heartbeat_age_s: float, stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why a lock held by ``owner`` (None: unreadable) is stale, or None when its run may be alive."""
    here = machine_identity()
    if isinstance(owner, dict) and isinstance(owner.get("pid"), int) and owner.get("host") == here["host"]:
        if here["boot_id"] and owner.get("boot_id") and owner["boot_id"] != here["boot_id"]:
            return "its owner ran before this host rebooted"
        if owner.get("pid_namespace") == here["pid_namespace"]:
            state, ticks = process_state(owner["pid"])
            if state == "gone":
                return f"process {owner['pid']} has ended"
            if state == "zombie":
                return f"process {owner['pid']} has ended (a zombie)"
            if ticks is not None and owner.get("start_ticks") is not None and ticks != owner["start_ticks"]:
                return f"process {owner['pid']} has ended (the pid now belongs to another process)"
            return None
    if heartbeat_age_s > stale_after_s:
        return f"no heartbeat for {heartbeat_age_s:.0f} s"
    return None


class RunLock:
    """``with RunLock(folder):`` holds ``folder/run.lock`` for the block (created with the folder).

    :meth:`acquire` raises :class:`RunLockedError` when a live run holds it; a stale lock is taken over.
    ``lost`` becomes True if the heartbeat finds the file gone or replaced (another run judged this one dead,
    e.g. after the process was stopped for longer than ``stale_after_s``); :meth:`check` raises then.
    """

    def __init__(self, folder: str | Path, heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.lost = False
        self._content: bytes | None = None  # what this run wrote (its token makes it unique)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # each pass either takes the lock, refuses, or removes one stale lock
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            content = json.dumps(owner_record()).encode("utf-8")
            try:
                os.write(fd, content)
                os.fsync(fd)
            except BaseException:  # e.g. a full disk: no empty lock left to block the next run
                os.close(fd)
                self.path.unlink(missing_ok=True)
                raise
            os.close(fd)
            self._content = content
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="run-lock-heartbeat", daemon=True)
            self._thread.start()
            return
        raise RunLockedError(f"{self.folder}: could not take {self.path}: other runs keep taking it")

    def release(self) -> None:
        """Stop the heartbeat and delete the lock file, if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._content is not None and self._holds():
            self.path.unlink(missing_ok=True)
        self._content = None

    def check(self) -> None:
        """RuntimeError when another run has taken the lock over (see ``lost``)."""
        if self.lost:
            raise RuntimeError(f"{self.path} was taken over by another run while this one was running "
                               f"(no heartbeat for {self.stale_after_s:.0f} s?); stopping so as not to write "
                               "beside it")

    def _holds(self) -> bool:
        """Whether the lock file is still the one this run wrote (not removed, not another run's)."""
        try:
            return self.path.read_bytes() == self._content
        except OSError:
            return False

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self._holds():
                self.lost = True
                return
            try:
                os.utime(self.path)
            except OSError:  # removed in between: the next beat sees it
                pass

    def _take_over_if_stale(self) -> None:
        """Refuse (RunLockedError) while the current lock's owner may be alive; else remove that lock."""
        try:
            raw, mtime = self.path.read_bytes(), self.path.stat().st_mtime
        except FileNotFoundError:  # released or taken over between our attempt and now: try again
            return
        try:
            owner = json.loads(raw)
        except ValueError:  # being written (created, not yet filled), or not ours: judged by its age
            owner = None
        age = max(0.0, time.time() - mtime)
        reason = stale_reason(owner, age, self.stale_after_s)
        if reason is None:
            raise RunLockedError(_held_message(self.folder, self.path, owner, age))
        aside = self.path.with_name(f".{LOCK_FILE}.stale.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:  # another run removed it first
            return
        if aside.read_bytes() == raw:
            aside.unlink(missing_ok=True)
            return
        # Between our read and the rename another run replaced the stale lock with its own: put it back.
        try:
            os.link(aside, self.path)
        except OSError:  # a third run took the name meanwhile (or no hard links): that owner sees it lost
            pass
        aside.unlink(missing_ok=True)


@contextmanager
def hold_run_lock(folder: str | Path, accelerator):
    """Hold ``folder``'s :class:`RunLock` on the main process for the block (yields it there, None on the other
    processes); every process raises the same :class:`RunLockedError` when a live run holds it."""
    lock, refused = None, None
    if accelerator.is_main_process:
        lock = RunLock(folder)
        try:
            lock.acquire()
        except RunLockedError as err:
            lock, refused = None, str(err)
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list  # heavy: only multi-process runs need it

        refused = broadcast_object_list([refused])[0]
    if refused is not None:
        raise RunLockedError(refused)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()


def _held_message(folder: Path, path: Path, owner: dict | None, age: float) -> str:
    if not isinstance(owner, dict):
        who = f"a run whose lock file is not readable yet (touched {age:.0f} s ago)"
    else:
        who = f"pid {owner.get('pid')} on {owner.get('host')}, since {owner.get('started')}"
        if owner.get("host") != socket.gethostname():
            who += f", heartbeat {age:.0f} s ago"
    return (f"{folder} is in use by a live run ({who}; lock {path}): wait for it to end, stop it, or choose "
            "another output folder (a dead run's lock is taken over by itself)")
