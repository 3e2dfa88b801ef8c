"""CREMA-D: emotion and speaker from each file name, gender from the demographics table, and a seeded
speaker-disjoint split (the corpus has no official one)."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .parsing import Skip, build_manifest, collect_rows, corpus_root, find_files, manifest_row, parse_gender, read_table

CREMA_D_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral",
                    "SAD": "sad"}

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def _split_speakers(gender_of: Mapping[str, str], dev_fraction: float, test_fraction: float,
                    seed: int) -> dict[str, str]:
    """A seeded, deterministic speaker -> split assignment, stratified by gender.

    Within each gender group ("" when unknown), the sorted speakers are shuffled by one
    ``numpy.random.default_rng(seed)``; the first ``round(test_fraction * n)`` go to test, the next
    ``round(dev_fraction * n)`` to dev, the rest to train (halves round up).
    """
    if not (0 <= dev_fraction < 1 and 0 <= test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise ValueError(f"dev_fraction={dev_fraction} and test_fraction={test_fraction}: each must be in [0, 1) "
                         "and their sum below 1")
    groups: dict[str, list[str]] = defaultdict(list)
    for speaker, gender in gender_of.items():
        groups[gender].append(speaker)
    rng = np.random.default_rng(seed)
    split_of = {}
    for gender in sorted(groups):
        speakers = [str(s) for s in rng.permutation(sorted(groups[gender]))]
        n_test = int(test_fraction * len(speakers) + 0.5)
        n_dev = int(dev_fraction * len(speakers) + 0.5)
        for i, speaker in enumerate(speakers):
            split_of[speaker] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    return split_of


def _genders(root: Path) -> dict[str, str]:
    """ActorID -> gender from ``VideoDemographics.csv`` in root; {} when the file is absent."""
    demographics = root / "VideoDemographics.csv"
    if not demographics.is_file():
        return {}
    table = read_table(demographics, ("ActorID", "Sex"))
    return {actor.strip(): parse_gender(sex) for actor, sex in zip(table["ActorID"], table["Sex"])}


def prepare_crema_d(root, dev_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """CREMA-D: ``AudioWAV/SSSS_TTT_EEE_LL.wav`` (speaker, sentence, emotion, level) under ``root``.

    Emotions ANG/DIS/FEA/HAP/NEU/SAD. Gender from ``root/VideoDemographics.csv`` (ActorID, Sex) when present,
    else "". CREMA-D has no official partition, so speakers are assigned to train/dev/test by
    ``_split_speakers`` (fractions of speakers, seeded, gender-stratified); fold -1.
    """
    patterns = ("**/*.wav",)
    root = corpus_root(root, patterns[0])
    gender_of = _genders(root)

    def parse(path: Path) -> dict:
        match = _NAME.match(path.stem)
        if not match:
            raise Skip("name is not SSSS_TTT_EEE_LL")
        speaker, _sentence, emotion, _level = match.groups()
        if emotion not in CREMA_D_EMOTIONS:
            raise Skip(f"unknown emotion code {emotion}")
        return manifest_row(path, CREMA_D_EMOTIONS[emotion], speaker, gender_of.get(speaker, ""))

    rows, skipped = collect_rows(find_files(root, patterns), parse)
    split_of = _split_speakers({row["speaker"]: row["gender"] for row in rows}, dev_fraction, test_fraction, seed)
    for row in rows:
        row["split"] = split_of[row["speaker"]]
    return build_manifest(rows, skipped, root, patterns[0])
