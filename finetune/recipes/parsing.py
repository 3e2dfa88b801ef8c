"""What the corpus recipes share: find a corpus's files, turn each file or label row into a manifest row (or a
reason to skip it), and build the validated manifest sorted by path with the skipped items in
``df.attrs["skipped"]``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from .manifest import require_columns, validate_manifest

# Every container soundfile reads and seeks (avpretext.common.audio.read_audio seeks): Opus/Vorbis in Ogg
# included, as corpora redistributed at low bit rates (the shared BAVED copy) come that way.
AUDIO_PATTERNS = ("**/*.wav", "**/*.flac", "**/*.opus", "**/*.ogg")

_GENDER_ALIASES = {"female": "female", "f": "female", "male": "male", "m": "male", "": "", "unknown": "",
                   "nan": ""}


class Skip(Exception):
    """A file or row that does not become a manifest row; the message is the reason."""


def corpus_root(root, looked_for: str) -> Path:
    """The corpus folder as an absolute path (symlinks kept: paths stay the ones the user knows)."""
    path = Path(os.path.abspath(os.fspath(root)))
    if not path.is_dir():
        raise ValueError(f"{path}: no such corpus folder (looked for {looked_for})")
    return path


def find_files(root: Path, patterns: Sequence[str]) -> list[Path]:
    """Files under ``root`` matching any glob pattern, sorted; ValueError naming root and patterns if none."""
    found = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if not found:
        raise ValueError(f"{root}: no files matching {' or '.join(patterns)}")
    return found


def read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """A corpus's CSV label table, every cell as text ("01" stays "01", empty stays ""); ValueError naming the
    file when one of ``columns`` is missing."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    require_columns(table, columns, path)
    return table


def manifest_row(path, label: str, speaker: str, gender: str = "", split: str = "", fold: int = -1,
                 **dimensions) -> dict:
    """One manifest row; ``dimensions`` are the ratings (arousal, valence, dominance) of corpora that have them."""
    return {"path": str(path), "label": label, "speaker": speaker, "gender": gender, "split": split, "fold": fold,
            **dimensions}


def collect_rows(items: Iterable, parse: Callable[[object], dict],
                 path_of: Callable[[object], str] = str) -> tuple[list[dict], list[tuple[str, str]]]:
    """``parse`` each item into a row; items it rejects with ``Skip`` are kept as ``(path, reason)``."""
    rows, skipped = [], []
    for item in items:
        try:
            rows.append(parse(item))
        except Skip as why:
            skipped.append((path_of(item), str(why)))
    return rows, skipped


def build_manifest(rows: list[dict], skipped: list[tuple[str, str]], source, looked_for: str) -> pd.DataFrame:
    """The manifest DataFrame (validated, sorted by path) with ``attrs["skipped"]``."""
    if not rows:
        examples = "; ".join(f"{Path(p).name}: {reason}" for p, reason in skipped[:3])
        raise ValueError(f"{source}: no usable files matching {looked_for} ({len(skipped)} skipped"
                         + (f", e.g. {examples})" if examples else ")"))
    df = validate_manifest(pd.DataFrame(rows), source).sort_values("path", kind="stable").reset_index(drop=True)
    df.attrs["skipped"] = sorted(skipped)
    return df


def manifest_from_files(root, patterns: Sequence[str], parse: Callable[[Path], dict]) -> pd.DataFrame:
    """The recipe of a corpus whose file names say everything: find files by pattern, parse each name, build
    the manifest."""
    root = corpus_root(root, " or ".join(patterns))
    rows, skipped = collect_rows(find_files(root, patterns), parse)
    return build_manifest(rows, skipped, root, " or ".join(patterns))


def parse_gender(value) -> str:
    """'Female'/'F'/'male'/... -> 'female'/'male'; unknown -> ''. Anything else is returned lower-cased so that
    validation reports it."""
    text = str(value).strip().lower()
    return _GENDER_ALIASES.get(text, text)
