"""On-disk layout of an extraction folder, with atomic, resumable writes.

::

    OUT/
      extract_config.json          options of the run (a rerun with other options is refused)
      items/<id>/                  one folder per finished item, appearing atomically (renamed from .tmp)
          meta.json                duration, rates, warnings, coverage, timings
          audio.flac               16 kHz mono PCM-16 (absent when the file has no audio track)
          energy.npy               (E,) float32 frame energy in dB, 10 ms hop
          face/*.npy               per analysed frame: times, present, num_faces, landmarks, ...
      failed/<id>.json             why an item failed (written atomically)
      .tmp/<id>.<host>.<pid>.*     in-flight work; never read

A run killed at any moment leaves only ``.tmp`` debris, which the next run removes: the finished items
are untouched and the in-flight ones are redone. Every temporary name (work folders, the hidden
``.<name>.<host>.<pid>.<random>`` file of an atomic write) carries its writer's host and pid, so a later run
removes only what dead processes of its own host left and never a live writer's file.

Everything is created with the user's umask (0o777/0o666 masked), like any other program's output, so a
group or other accounts can read a corpus on shared storage (``tempfile.mkdtemp``/``mkstemp`` would force
0700/0600).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

# Re-exported: the extraction and label modules write through ``store.*``; the code lives in the common layer.
from avpretext.common.io import (check_output_folder, clean_stale_temp_files, is_stale_temp, read_json,  # noqa: F401
                                 temp_name, write_atomic, write_json_atomic)

ITEMS_DIR = "items"
FAILED_DIR = "failed"
TMP_DIR = ".tmp"
META_FILE = "meta.json"
AUDIO_FILE = "audio.flac"
ENERGY_FILE = "energy.npy"
FACE_DIR = "face"


def item_dir(out: str | Path, item_id: str) -> Path:
    return Path(out) / ITEMS_DIR / item_id


def failure_path(out: str | Path, item_id: str) -> Path:
    return Path(out) / FAILED_DIR / f"{item_id}.json"


def is_done(out: str | Path, item_id: str) -> bool:
    return (item_dir(out, item_id) / META_FILE).exists()


def has_failed(out: str | Path, item_id: str) -> bool:
    return failure_path(out, item_id).exists()


def make_work_dir(out: str | Path, item_id: str) -> Path:
    """A fresh folder in which one item's outputs are assembled before commit (mode from the umask)."""
    tmp_root = Path(out) / TMP_DIR
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = tmp_root / temp_name(item_id)
    work.mkdir()  # the random part makes the name unique; mkdir fails rather than share a folder
    return work


def commit_work_dir(work: Path, out: str | Path, item_id: str) -> bool:
    """Publish a finished work folder as ``items/<id>`` in one rename (call :func:`fsync_tree` first).

    Returns False (and discards ``work``) when another process published the item first.
    """
    target = item_dir(out, item_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(work, target)
    except OSError:
        if not target.exists():
            raise
        shutil.rmtree(work, ignore_errors=True)
        return False
    failure_path(out, item_id).unlink(missing_ok=True)  # a retried item that now succeeds
    return True


def clean_stale_work_dirs(out: str | Path) -> int:
    """Remove work folders left by dead processes of this host. Returns how many were removed.

    Folders of live processes (another run on the same output) and of other hosts (a shared filesystem)
    are left alone.
    """
    tmp_root = Path(out) / TMP_DIR
    if not tmp_root.is_dir():
        return 0
    removed = 0
    for entry in tmp_root.iterdir():
        if is_stale_temp(entry.name):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed += 1
    return removed


def fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` to disk (so a published item survives a machine crash too)."""
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


class NpyStreamWriter:
    """Append rows to a ``.npy`` file without holding them in memory.

    The header is written with room for any row count and rewritten with the true count on
    :meth:`close`, so memory stays flat however long the video is (at most ``buffer_rows`` rows are held),
    and the result is an ordinary ``.npy`` that ``np.load(..., mmap_mode="r")`` opens.

    Args:
        path: output file.
        dtype: element type.
        row_shape: shape of one row, e.g. ``(478, 3)`` for landmarks.
        buffer_rows: rows gathered before one write (one small write per video frame costs more).
    """

    _HEADER_BYTES = 256  # fixed header size (multiple of 64, as the .npy format requires)

    def __init__(self, path: str | Path, dtype, row_shape: tuple[int, ...] = (), buffer_rows: int = 256):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self.buffer_rows = buffer_rows
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._file = open(self.path, "wb")
        self._write_header()

    def append(self, rows: np.ndarray) -> None:
        """Append ``rows`` of shape ``(n, *row_shape)`` (or one row of shape ``row_shape``)."""
        rows = np.asarray(rows, dtype=self.dtype)
        if rows.shape == self.row_shape:
            rows = rows[None]
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path.name}: row shape {rows.shape[1:]} != {self.row_shape}")
        self._pending.append(rows)
        self._pending_rows += rows.shape[0]
        self.rows += rows.shape[0]
        if self._pending_rows >= self.buffer_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._file.write(np.ascontiguousarray(np.concatenate(self._pending)).tobytes())
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        if self._file.closed:
            return
        self._flush()
        self._file.seek(0)
        self._write_header()
        self._file.close()

    def _write_header(self) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (self.rows, *self.row_shape)}
        text = repr(header).encode("latin1")
        prefix = np.lib.format.magic(1, 0)
        pad = self._HEADER_BYTES - len(prefix) - 2 - len(text) - 1
        if pad < 0:
            raise ValueError("npy header too long")
        body = text + b" " * pad + b"\n"
        self._file.write(prefix + len(body).to_bytes(2, "little") + body)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def iter_npy_chunks(path: str | Path, chunk_rows: int):
    """Yield consecutive row blocks of a ``.npy`` file, read with plain file reads.

    Unlike ``np.load(mmap_mode="r")``, the pages read do not stay mapped into the process (a memory map
    counts every touched page in the process's resident size), so a long video costs no more memory than
    a short one.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if fortran:
            raise ValueError(f"{path}: Fortran-ordered arrays are not supported")
        row_shape = shape[1:]
        row_items = int(np.prod(row_shape)) if row_shape else 1
        for lo in range(0, shape[0], chunk_rows):
            n = min(chunk_rows, shape[0] - lo)
            yield np.fromfile(f, dtype=dtype, count=n * row_items).reshape((n, *row_shape))
