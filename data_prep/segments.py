"""The label stage's on-disk contract: file names of a ``data_prep label`` folder and the segment-table reader.

Kept apart from :mod:`data_prep.label` so that code below the label stage (a task's re-clustering round,
pretext training) can read a labelled folder without importing the stage that derives it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

SEGMENTS_FILE = "segments.parquet"
STATS_FILE = "label_stats.json"
CONFIG_FILE = "label_config.json"


def segments_path(path: str | Path) -> Path:
    """The segment table of a ``data_prep label`` folder, or ``path`` itself when it is the parquet file."""
    path = Path(path)
    return path / SEGMENTS_FILE if path.is_dir() else path


def load_segments(path: str | Path) -> pd.DataFrame:
    """The segment table written by ``data_prep label``, as a pandas DataFrame.

    Args:
        path: the folder given to ``data_prep label`` (or its ``--out``), or the parquet file itself.

    Columns: ``segment_id, media_id, speaker, source (folder of the media file), audio_path, start, end,
    duration``; per task ``<task>_label`` (int, -1 when missing), ``<task>_mask`` (bool) and its values
    (``energy_value``, ``face_value``, ``au_frac_<class>``, ...); ``config_hash`` of the label config.
    """
    return pd.read_parquet(segments_path(path))
