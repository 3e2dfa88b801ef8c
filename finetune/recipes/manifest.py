"""The fine-tuning manifest: the columns and values every recipe returns, and the manifest's CSV file.

A manifest is a pandas DataFrame with exactly these columns, in order (``MANIFEST_COLUMNS``), one row per
labelled utterance:

* ``path`` (str): absolute path of the audio file.
* ``label`` (str): the categorical emotion, a lower-case English word ("neutral", "happy", "angry", ...).
* ``speaker`` (str): a speaker id unique within the corpus ("01" for RAVDESS actor 1, "1001" for CREMA-D,
  "Ses01F" for IEMOCAP). Always a string, so leading zeros survive.
* ``gender`` (str): "female", "male", or "" when unknown.
* ``split`` (str): "train" / "dev" / "test" when the corpus defines (or the recipe makes) a fixed partition,
  else "". Splits are always speaker-disjoint (``check_speaker_disjoint``).
* ``fold`` (int): a predefined cross-validation group (IEMOCAP session 1..5), else -1.
* ``arousal``, ``valence``, ``dominance`` (float, optional; ``DIMENSION_COLUMNS``): dimensional ratings.

``write_manifest`` / ``load_manifest`` store a manifest as CSV.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from avpretext.common.io import write_atomic

MANIFEST_COLUMNS = ("path", "label", "speaker", "gender", "split", "fold")
DIMENSION_COLUMNS = ("arousal", "valence", "dominance")
SPLITS = ("train", "dev", "test")
GENDERS = ("female", "male")
# Speaker ids that say "we do not know who this is": they cannot be checked for split overlap (MSP-Podcast
# puts its unidentified speakers in every partition).
UNKNOWN_SPEAKERS = frozenset({"", "unknown"})


def require_columns(table: pd.DataFrame, columns: Sequence[str], source) -> None:
    """ValueError naming ``source``, the missing columns and the available ones when ``table`` lacks any of
    ``columns``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; available columns: {list(table.columns)}")


def resolve_path(folder: Path, path: str) -> str:
    """``path`` made absolute, relative paths taken from ``folder``."""
    return os.path.abspath(os.path.join(folder, path.strip()))


def _fold(value) -> int:
    text = str(value).strip()
    if text in ("", "nan"):
        return -1
    number = float(text)  # "3" and "3.0" (a CSV written from a float column) are both fold 3
    if not number.is_integer():
        raise ValueError(f"fold {text!r} is not an integer")
    return int(number)


def validate_manifest(df: pd.DataFrame, source) -> pd.DataFrame:
    """The manifest contract: required columns, types and values; returns the manifest columns only.

    Raises ValueError naming ``source`` and the first broken rule.
    """
    require_columns(df, MANIFEST_COLUMNS, source)
    if df.empty:
        raise ValueError(f"{source}: the manifest has no rows")
    columns = list(MANIFEST_COLUMNS) + [c for c in DIMENSION_COLUMNS if c in df.columns]
    out = df[columns].copy()
    for column in ("path", "label", "speaker", "gender", "split"):
        out[column] = out[column].fillna("").astype(str)
    for column in ("path", "label"):
        empty = int((out[column].str.strip() == "").sum())
        if empty:
            raise ValueError(f"{source}: {empty} row(s) with an empty {column!r}")
    for column, allowed in (("gender", ("", *GENDERS)), ("split", ("", *SPLITS))):
        bad = sorted(set(out[column]) - set(allowed))
        if bad:
            raise ValueError(f"{source}: unknown {column} value(s) {bad}; expected one of {list(allowed)}")
    try:
        out["fold"] = out["fold"].map(_fold).astype(int)
        for column in DIMENSION_COLUMNS:
            if column in out:
                out[column] = pd.to_numeric(out[column], errors="raise").astype(float)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{source}: {err}") from None
    try:
        check_speaker_disjoint(out)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    return out


def check_speaker_disjoint(df: pd.DataFrame) -> None:
    """Refuse a manifest whose train/dev/test splits share a speaker (a speaker-dependent test set flatters).

    Rows with split "" and unknown speakers ("" or "unknown") are not checked. Raises ValueError listing each
    offending speaker with the splits it appears in.
    """
    labelled = df[(df["split"] != "") & ~df["speaker"].isin(UNKNOWN_SPEAKERS)]
    splits_of = labelled.groupby("speaker")["split"].unique()
    overlap = splits_of[splits_of.map(len) > 1]
    if len(overlap):
        listed = ", ".join(f"{speaker} ({'/'.join(sorted(splits))})" for speaker, splits in overlap.items())
        raise ValueError(f"{len(overlap)} speaker(s) in more than one split (splits must be speaker-disjoint): "
                         f"{listed}")


def write_manifest(df: pd.DataFrame, path) -> Path:
    """Write a manifest as CSV (the manifest columns only), atomically (:func:`avpretext.common.io.write_atomic`),
    so a reader never sees half a file. Returns the path written."""
    path = Path(path)
    df = validate_manifest(df, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: df.to_csv(tmp, index=False))
    return path


def load_manifest(path) -> pd.DataFrame:
    """Read a manifest CSV: every column as text (speaker "01" stays "01"), fold as int, dimensions as float,
    relative paths resolved against the manifest's folder. ValueError naming the file when it is missing,
    empty, lacks a column, has bad values or overlapping splits."""
    path = Path(os.path.abspath(os.fspath(path)))
    if not path.is_file():
        raise ValueError(f"{path}: no such manifest")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the manifest is empty") from None
    df = validate_manifest(df, path)
    df["path"] = [resolve_path(path.parent, p) for p in df["path"]]
    return df
