"""Corpus recipes: each emotion corpus's own layout -> one fine-tuning manifest.

Every ``prepare_<corpus>(root, **options)`` returns a manifest (:mod:`finetune.recipes.manifest`: a pandas
DataFrame with exactly the ``MANIFEST_COLUMNS``), one row per labelled utterance, sorted by path. Utterances
without a categorical label (no agreement, "other", classes not asked for) are dropped. Files or rows that do not
become manifest rows (names not following the corpus convention, labels dropped on purpose, missing audio) are
listed with a reason in ``df.attrs["skipped"]``: a list of ``(path, reason)``.

One module per corpus holds its naming rules, label map and recipe; :mod:`finetune.recipes.parsing` holds what
they share. ``RECIPES`` maps corpus names to recipes (the ``python -m finetune.prepare`` command line uses it):
a new corpus is a new module with its ``prepare_NAME`` added to ``RECIPES``.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd

from .baved import prepare_baved
from .crema_d import prepare_crema_d
from .emodb import prepare_emodb
from .generic_csv import prepare_csv
from .iemocap import prepare_iemocap
from .manifest import MANIFEST_COLUMNS, check_speaker_disjoint, load_manifest, write_manifest
from .msp_podcast import prepare_msp_podcast
from .ravdess import prepare_ravdess

RECIPES: dict[str, Callable[..., pd.DataFrame]] = {
    "ravdess": prepare_ravdess,
    "crema-d": prepare_crema_d,
    "iemocap": prepare_iemocap,
    "msp-podcast": prepare_msp_podcast,
    "emodb": prepare_emodb,
    "baved": prepare_baved,
    "csv": prepare_csv,
}

__all__ = ["MANIFEST_COLUMNS", "RECIPES", "check_speaker_disjoint", "load_manifest", "prepare_baved",
           "prepare_crema_d", "prepare_csv", "prepare_emodb", "prepare_iemocap", "prepare_msp_podcast",
           "prepare_ravdess", "write_manifest"]
