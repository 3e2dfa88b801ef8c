"""RAVDESS speech: emotion, actor and gender from each file name."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .parsing import AUDIO_PATTERNS, Skip, manifest_from_files, manifest_row

RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
                    "07": "disgust", "08": "surprised"}

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def _parse(path: Path) -> dict:
    match = _NAME.match(path.stem)
    if not match:
        raise Skip("name is not MM-VV-EE-II-SS-RR-AA")
    modality, channel, emotion, _intensity, _statement, _repetition, actor = match.groups()
    if modality != "03":
        raise Skip(f"modality {modality} is not audio-only (03)")
    if channel != "01":
        raise Skip(f"vocal channel {channel} is not speech (01); song is not used")
    if emotion not in RAVDESS_EMOTIONS:
        raise Skip(f"unknown emotion code {emotion}")
    if actor == "00":
        raise Skip("actor 00")
    return manifest_row(path, RAVDESS_EMOTIONS[emotion], actor, "male" if int(actor) % 2 else "female")


def prepare_ravdess(root) -> pd.DataFrame:
    """RAVDESS speech: ``03-01-EE-II-SS-RR-AA.<wav|flac|opus|ogg>`` anywhere under ``root`` (Actor_NN folders).

    EE is the emotion (01 neutral ... 08 surprised), AA the actor: speaker "01".."24", odd actors male, even
    female. Song files (vocal channel 02) are skipped. No fixed partition: split "" and fold -1.
    """
    return manifest_from_files(root, AUDIO_PATTERNS, _parse)
