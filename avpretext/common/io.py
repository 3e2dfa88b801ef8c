"""Atomic, resumable file writes: readers see either the old file or the whole new one, never a torn write.

Every temporary name (the hidden ``.<name>.<host>.<pid>.<random>`` file of an atomic write, extraction work
folders) carries its writer's host and pid, so a later run removes only what dead processes of its own host
left and never a live writer's file. Files are created with the user's umask.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import processes


def temp_name(prefix: str) -> str:
    """``<prefix>.<host>.<pid>-<start time>.<random>``: whose it is, so :func:`is_stale_temp` can tell debris
    from live work (the start time, where the system tells it, keeps a later process with the same pid from
    passing for the writer: :mod:`avpretext.common.processes`)."""
    return f"{prefix}.{socket.gethostname()}.{processes.own_identity()}.{secrets.token_hex(4)}"


def is_stale_temp(name: str, prefix: str | None = None) -> bool:
    """True when ``name`` is a :func:`temp_name` (of ``prefix``, if given) of a dead process of this host.

    Parsed from the right, so host names with dots work; names of other hosts (a shared filesystem) and of
    live processes are never stale. A zombie writer (killed, not reaped yet) is dead, and so is one whose pid
    now belongs to a process started at another time.
    """
    parts = name.rsplit(".", 2)
    identity = processes.parse_identity(parts[1]) if len(parts) == 3 and parts[2] else None
    if identity is None:
        return False
    head, host = parts[0], "." + socket.gethostname()
    if not head.endswith(host) or (prefix is not None and head[:-len(host)] != prefix):
        return False
    return not processes.is_alive(*identity)


def clean_stale_temp_files(folder: str | Path, names: Iterable[str] | None = None) -> int:
    """Remove the temporary files that killed atomic writes of ``folder/<name>`` left (dead writers of
    this host only), for each of ``names``, or for any name when None (folders only this code writes).
    Returns how many were removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    prefixes = [None] if names is None else [f".{name}" for name in names]
    removed = 0
    for entry in folder.glob(".*"):
        if entry.is_file() and any(is_stale_temp(entry.name, prefix) for prefix in prefixes):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Create ``path`` through ``write(tmp_path)`` so that readers see either the old file or the whole new
    one, never a torn write.

    ``write`` creates ``tmp_path`` (a hidden :func:`temp_name` beside ``path``: the rename is atomic only
    within one folder); it is flushed to disk and renamed over ``path``, or removed on any error. A process
    killed before the rename leaves the temporary file, which :func:`clean_stale_temp_files` removes later.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / temp_name(f".{path.name}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see either the old file or the whole new one, never a torn write."""
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:  # mode 0o666 minus the umask
            f.write(data)

    write_atomic(path, write)


def write_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    """Write one array as ``.npy`` so that readers see either the old file or the whole new one."""
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:  # mode 0o666 minus the umask
            np.save(f, array)

    write_atomic(path, write)


def write_json_atomic(path: str | Path, obj) -> None:
    """Write JSON so that readers see either the old file or the whole new one."""
    write_bytes_atomic(path, json.dumps(obj, indent=1, ensure_ascii=False, default=_json_default).encode("utf-8"))


def read_json(path: str | Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj)}")


def check_output_folder(path: str | Path) -> Path:
    """``path`` as a Path; refuses one that exists and is not a folder, before any work is done (every
    write into it would fail, after the work)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path}: the output folder is an existing file")
    return path


def check_output_file(path: str | Path) -> Path:
    """``path`` as a Path; refuses an existing folder, or a path under an existing file, before any work is
    done (the write at the end would fail, after the work)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: the output file is an existing folder; give a file name, "
                                f"e.g. {path / 'predictions.csv'}")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise NotADirectoryError(f"{path}: {parent} is an existing file, not a folder")
    return path
