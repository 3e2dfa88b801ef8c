"""Any corpus described by a CSV table: the user names the columns that hold path, label, speaker and
(optionally) gender, split and fold."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .manifest import resolve_path
from .parsing import Skip, build_manifest, collect_rows, manifest_row, parse_gender, read_table

_SPLIT_ALIASES = {"train": "train", "dev": "dev", "development": "dev", "validation": "dev", "valid": "dev",
                  "val": "dev", "test": "test", "": ""}


def prepare_csv(path, path_column: str = "path", label_column: str = "label", speaker_column: str = "speaker",
                gender_column: str | None = None, split_column: str | None = None,
                fold_column: str | None = None) -> pd.DataFrame:
    """Any corpus described by a CSV: one row per file, with (at least) path, label and speaker columns.

    Relative paths are resolved against the CSV's folder. Labels are lower-cased; rows with an empty label are
    dropped. Gender accepts female/male/f/m (any case), split train/dev/test (dev also as development,
    validation, valid, val); fold must be an integer. The audio files are not opened.
    """
    csv = Path(os.path.abspath(os.fspath(path)))
    if not csv.is_file():
        raise ValueError(f"{csv}: no such CSV file")
    wanted = {"path": path_column, "label": label_column, "speaker": speaker_column, "gender": gender_column,
              "split": split_column, "fold": fold_column}
    table = read_table(csv, [name for name in wanted.values() if name is not None])

    def value(record: dict, key: str, default=""):
        return record[wanted[key]] if wanted[key] is not None else default

    def parse(record: dict) -> dict:
        label = record[label_column].strip().lower()
        if not label:
            raise Skip("empty label")
        split = value(record, "split").strip().lower()
        return manifest_row(resolve_path(csv.parent, record[path_column]), label, record[speaker_column].strip(),
                            parse_gender(value(record, "gender")), _SPLIT_ALIASES.get(split, split),
                            value(record, "fold", -1))

    rows, skipped = collect_rows(table.to_dict("records"), parse,
                                 path_of=lambda r: resolve_path(csv.parent, r[path_column]))
    return build_manifest(rows, skipped, csv, f"the {path_column!r} column")
