"""The label stage's on-disk contract: file names of a ``data_prep label`` folder and the segment-table reader.

Kept apart from :mod:`data_prep.label` so that code below the label stage (a task's re-clustering round,
pretext training) can read a labelled folder without importing the stage that derives it.

A label folder is complete once ``segments.parquet`` is there: ``data_prep label`` removes the old table first,
writes ``label_stats.json`` and ``label_config.json``, and publishes the table last. Audio paths in the table
are stored relative to the table's folder (absolute when there is no relative path, e.g. another drive), so a
folder can be read from any working folder, moved or copied together with its extraction.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

SEGMENTS_FILE = "segments.parquet"
STATS_FILE = "label_stats.json"
LABEL_CONFIG_FILE = "label_config.json"
RELABEL_HINT = "rerun data_prep label on its extraction"


def segments_path(path: str | Path) -> Path:
    """The segment table of a ``data_prep label`` folder, or ``path`` itself when it is the parquet file."""
    path = Path(path)
    return path / SEGMENTS_FILE if path.is_dir() else path


def load_segments(path: str | Path) -> pd.DataFrame:
    """The segment table written by ``data_prep label``, as a pandas DataFrame, its audio paths absolute.

    Args:
        path: the folder given to ``data_prep label`` (or its ``--out``), or the parquet file itself.

    Columns: ``segment_id, media_id, speaker, source (folder of the media file), audio_path, start, end,
    duration``; per task ``<task>_label`` (int, -1 when missing), ``<task>_mask`` (bool) and its values
    (``energy_value``, ``face_value``, ``au_frac_<class>``, ...); ``config_hash`` of the label config.

    Raises:
        ValueError: a label folder left unfinished (a ``data_prep label`` run killed part-way), with the reason.
        FileNotFoundError: no segment table at ``path``.
    """
    table_path = segments_path(path)
    folder = table_path.parent
    if table_path.name == SEGMENTS_FILE:
        check_label_folder(folder)
    table = pd.read_parquet(table_path)
    if table_path.name == SEGMENTS_FILE:
        check_stats_agree(folder, table)
    return resolve_audio_paths(table, folder)


def check_label_folder(folder: Path) -> None:
    """Refuse a label folder whose files were not all published (see the module docstring)."""
    table, config, stats = (folder / name for name in (SEGMENTS_FILE, LABEL_CONFIG_FILE, STATS_FILE))
    if not table.exists() and (stats.exists() or config.exists()):
        raise ValueError(f"{folder}: unfinished label folder ({STATS_FILE} or {LABEL_CONFIG_FILE} without "
                         f"{SEGMENTS_FILE}: a data_prep label run stopped before its last file); {RELABEL_HINT}")
    if table.exists() and not config.exists():
        raise ValueError(f"{folder}: unfinished label folder ({SEGMENTS_FILE} without {LABEL_CONFIG_FILE}: the labels "
                         f"cannot be interpreted); {RELABEL_HINT}")


def check_stats_agree(folder: Path, table: pd.DataFrame) -> None:
    """A table and statistics of two different label runs (one interrupted after the table) are refused."""
    stats_file = folder / STATS_FILE
    if not stats_file.exists():  # derived folders (a subset, a concatenation) carry the table and config only
        return
    try:
        stats = json.loads(stats_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{stats_file}: unreadable ({type(err).__name__}: {err}); {RELABEL_HINT}") from None
    hashes = set(table["config_hash"].unique()) if "config_hash" in table and len(table) else set()
    if stats.get("segments") != len(table) or (hashes and stats.get("config_hash") not in hashes):
        raise ValueError(f"{folder}: {SEGMENTS_FILE} ({len(table)} segments) and {STATS_FILE} "
                         f"({stats.get('segments')} segments) come from different label runs (one was "
                         f"interrupted); {RELABEL_HINT}")


def resolve_audio_paths(table: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """``audio_path`` made absolute: relative entries are relative to ``folder``, the table's folder."""
    if "audio_path" not in table or not len(table):
        return table
    base = os.path.abspath(folder)
    table["audio_path"] = [p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))
                           for p in table["audio_path"].astype(str)]
    return table


def relative_audio_paths(table: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """A copy of ``table`` with ``audio_path`` relative to ``folder`` (where the table is written), or absolute
    where no relative path exists (another drive)."""
    table = table.copy()
    if "audio_path" not in table or not len(table):
        return table
    base = os.path.abspath(folder)

    def relative(path: str) -> str:
        try:
            return os.path.relpath(os.path.abspath(path), base)
        except ValueError:
            return os.path.abspath(path)

    table["audio_path"] = [relative(p) for p in table["audio_path"].astype(str)]
    return table
