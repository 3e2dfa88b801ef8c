"""BAVED (Basic Arabic Vocal Emotions): arousal level, speaker and gender from each file name."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .parsing import AUDIO_PATTERNS, Skip, manifest_from_files, manifest_row

# BAVED level digit -> arousal class (the corpus: 0 low, 1 normal or neutral, 2 high).
BAVED_LEVELS = {"0": "low", "1": "normal", "2": "high"}
BAVED_GENDERS = {"m": "male", "f": "female"}

_NAME = re.compile(r"^(\d+)-([A-Za-z]+)-(\d+)-(\d+)-(\d+)-(\d+)$")


def _parse(path: Path) -> dict:
    match = _NAME.match(path.stem)
    if not match:
        raise Skip("name is not SPEAKER-GENDER-AGE-WORD-LEVEL-RECORD (e.g. 0-m-21-0-1-105)")
    speaker, gender, _age, _word, level, _record = match.groups()
    if gender.lower() not in BAVED_GENDERS:
        raise Skip(f"unknown gender {gender} (m or f)")
    if level not in BAVED_LEVELS:
        raise Skip(f"unknown level {level} (0 low, 1 normal, 2 high)")
    # int() drops zero padding, so "07" and "7" (the corpus writes no padding) stay one speaker.
    return manifest_row(path, BAVED_LEVELS[level], str(int(speaker)), BAVED_GENDERS[gender.lower()])


def prepare_baved(root) -> pd.DataFrame:
    """BAVED (Basic Arabic Vocal Emotions): ``SPEAKER-GENDER-AGE-WORD-LEVEL-RECORD.<ext>``, e.g.
    ``0-m-21-0-1-105.opus``, anywhere under ``root`` (wav, flac, opus or ogg).

    The label is the arousal level as a class: 0 low, 1 normal, 2 high. Speaker "0", "1", ... (ids unique
    within the corpus), gender m/f from the name. No fixed partition: split "" and fold -1, so the
    speaker-fold protocol applies as for RAVDESS.
    """
    return manifest_from_files(root, AUDIO_PATTERNS, _parse)
