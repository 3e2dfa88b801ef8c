"""Is the process that wrote a file still running? A check that a zombie or a reused pid cannot fool.

``os.kill(pid, 0)`` succeeds for a zombie (a killed process that its parent has not reaped yet; under an
init that never reaps, forever) and for an unrelated process that later got the same pid. On Linux the
process's state and start time are read from ``/proc/<pid>/stat``: a zombie is dead, and a pid whose start
time differs from the one its writer recorded belongs to someone else. Elsewhere the check falls back to
``os.kill(pid, 0)``.
"""
from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")
_DEAD_STATES = ("Z", "X")  # zombie, dead (being reaped)


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from the state on (field 3 of proc(5) is index 0), or None when
    there is no such process or no /proc."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:  # no such process (or no /proc)
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return text[text.rindex(")") + 2:].split()


def has_proc() -> bool:
    return (_PROC / "self" / "stat").exists()


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of ``/proc/<pid>/stat``); None without /proc
    or when there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def own_identity() -> str:
    """``<pid>-<start time>`` of this process (``<pid>`` alone without /proc): what :func:`is_alive` checks."""
    pid = os.getpid()
    started = start_time(pid)
    return f"{pid}" if started is None else f"{pid}-{started}"


def parse_identity(text: str) -> tuple[int, int | None] | None:
    """``(pid, start time or None)`` of an :func:`own_identity` string, or None when it is not one."""
    pid, _, started = text.partition("-")
    if not pid.isdigit() or (started and not started.isdigit()):
        return None
    return int(pid), int(started) if started else None


def process_state(pid: int) -> tuple[str, int | None]:
    """``(state, start time)`` of process ``pid`` of this host: state ``"gone"``, ``"zombie"`` or ``"alive"``;
    the start time in clock ticks since boot (None without /proc, where only the pid's existence is known)."""
    if has_proc():
        fields = _stat_fields(pid)
        if fields is None:
            return "gone", None
        return ("zombie" if fields[0] in _DEAD_STATES else "alive"), int(fields[19])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone", None
    except PermissionError:  # someone else's live process
        pass
    return "alive", None


def is_alive(pid: int, started: int | None = None) -> bool:
    """True while process ``pid`` of this host runs (a zombie does not); with ``started`` (its
    :func:`start_time`), only if the process now holding that pid is the same one."""
    state, ticks = process_state(pid)
    if state != "alive":
        return False
    return started is None or ticks is None or ticks == started
