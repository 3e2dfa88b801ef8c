"""Berlin EmoDB: speaker and emotion from each file name; the ten speakers' genders are known."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .parsing import AUDIO_PATTERNS, Skip, manifest_from_files, manifest_row

EMODB_EMOTIONS = {"W": "angry", "L": "bored", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad",
                  "N": "neutral"}
EMODB_SPEAKERS = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male", "12": "male",
                  "13": "female", "14": "female", "15": "male", "16": "female"}

_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z])$")


def _parse(path: Path) -> dict:
    match = _NAME.match(path.stem)
    if not match:
        raise Skip("name is not SSTTTEV (e.g. 03a01Fa)")
    speaker, _text, emotion, _version = match.groups()
    if speaker not in EMODB_SPEAKERS:
        raise Skip(f"unknown speaker {speaker}")
    if emotion not in EMODB_EMOTIONS:
        raise Skip(f"unknown emotion letter {emotion}")
    return manifest_row(path, EMODB_EMOTIONS[emotion], speaker, EMODB_SPEAKERS[speaker])


def prepare_emodb(root) -> pd.DataFrame:
    """Berlin EmoDB: ``wav/SSTTTEV.wav`` (speaker, text code, emotion letter, version), e.g. ``03a01Fa.wav``.

    Emotion letters are German initials (W Wut angry, L Langeweile bored, E Ekel disgust, A Angst fearful,
    F Freude happy, T Trauer sad, N neutral). Ten speakers with known genders; split "", fold -1.
    """
    return manifest_from_files(root, AUDIO_PATTERNS, _parse)
