"""IEMOCAP: utterances under each session's ``sentences/wav``, categorical labels from the dialogs'
EmoEvaluation files, one fold per session."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from .parsing import Skip, build_manifest, collect_rows, corpus_root, find_files, manifest_row

# "exc" (excited) is merged into happy, as in most IEMOCAP SER work. "xxx" (no majority) has no class.
IEMOCAP_EMOTIONS = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad",
                    "fru": "frustrated", "sur": "surprised", "fea": "fearful", "dis": "disgust", "oth": "other"}

_LABEL_LINE = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(\S+)\t(\S+)\t")
_UTTERANCE = re.compile(r"^Ses(\d{2})[FM]_\S+_([FM])\d{3}$")
_LABELS = "Session*/dialog/EmoEvaluation/*.txt"


def _labels(root: Path) -> dict[str, str]:
    """Utterance id -> categorical code (neu, hap, ...) from every dialog's EmoEvaluation file."""
    code_of = {}
    for text_file in sorted(root.glob(_LABELS)):
        # errors="replace": macOS "._" resource-fork files in some copies are binary; their lines never match.
        for line in text_file.read_text(errors="replace").splitlines():
            match = _LABEL_LINE.match(line)
            if match:
                code_of[match.group(1)] = match.group(2)
    if not code_of:
        raise ValueError(f"{root}: no labels found in {_LABELS}")
    return code_of


def prepare_iemocap(root, classes: Sequence[str] = ("neutral", "happy", "angry", "sad")) -> pd.DataFrame:
    """IEMOCAP: ``Session{1..5}/sentences/wav/<dialog>/<utterance>.wav`` with labels from
    ``Session{N}/dialog/EmoEvaluation/<dialog>.txt``.

    Codes map to ``IEMOCAP_EMOTIONS`` (exc is merged into happy); only ``classes`` are kept, xxx (no majority)
    never. The speaker is the session plus the utterance speaker's letter (``Ses01F_impro01_M012`` ->
    "Ses01M", male): each session has one female and one male actor. fold = session number, for
    leave-one-session-out; split "".
    """
    known = sorted(set(IEMOCAP_EMOTIONS.values()))
    unknown = sorted(set(classes) - set(known))
    if unknown:
        raise ValueError(f"IEMOCAP classes {unknown} unknown; choose from {known}")
    patterns = ("Session*/sentences/wav/**/*.wav",)
    root = corpus_root(root, f"{patterns[0]} and {_LABELS}")
    code_of = _labels(root)

    def parse(path: Path) -> dict:
        match = _UTTERANCE.match(path.stem)
        if not match:
            raise Skip("name is not SesNN[FM]_<dialog>_[FM]NNN")
        if path.stem not in code_of:
            raise Skip("no label in EmoEvaluation")
        code = code_of[path.stem]
        label = IEMOCAP_EMOTIONS.get(code)
        if label not in classes:
            raise Skip(f"label {code} not in classes")
        session, letter = match.groups()
        return manifest_row(path, label, f"Ses{session}{letter}", "female" if letter == "F" else "male",
                            fold=int(session))

    rows, skipped = collect_rows(find_files(root, patterns), parse)
    return build_manifest(rows, skipped, root, patterns[0])
