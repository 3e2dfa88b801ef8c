"""Speaker-independent evaluation protocols and label-fraction subsets.

A protocol turns a manifest (``finetune.recipes``) into one or more ``Split``s of train/dev/test rows in which
no speaker appears on two sides:

* ``split``: the manifest's own ``split`` column (train/dev/test, e.g. MSP-Podcast, CREMA-D's recipe);
  when it has no dev rows, dev speakers are taken from the training part.
* ``folds``: k-fold cross-validation over speakers: every speaker is tested exactly once. When every row has a
  predefined ``fold`` (IEMOCAP's sessions) those groups are the folds; otherwise speakers are dealt into
  ``num_folds`` gender-balanced folds. Each fold's dev speakers come from its training part (``dev_speakers``
  of them, more where needed for every class to have ``dev_min_per_class`` dev rows).
* ``auto``: ``split`` when the manifest has one, else ``folds``.

Everything depends only on the manifest and ``split_seed``, never on the training seed: the same fold is the
same split for every model compared on it.
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .recipes import check_speaker_disjoint

PROTOCOLS = ("auto", "split", "folds")


@dataclass
class Split:
    """One train/dev/test partition. ``name``: e.g. ``fold0`` or ``split``; test_speakers for reports."""

    name: str
    train: pd.DataFrame
    dev: pd.DataFrame
    test: pd.DataFrame

    @property
    def test_speakers(self) -> list[str]:
        return sorted(self.test["speaker"].unique())


def deal_speakers(speakers: pd.DataFrame, num_groups: int, seed: int) -> list[list[str]]:
    """Deal speakers into ``num_groups`` groups, balanced by gender where known.

    Args:
        speakers: one row per speaker with columns ``speaker``, ``gender``.
    Returns:
        ``num_groups`` sorted lists of speaker ids (sizes differ by at most one per gender).
    """
    if len(speakers) < num_groups:
        raise ValueError(f"{len(speakers)} speakers cannot fill {num_groups} folds")
    rng = np.random.default_rng(seed)
    order = speakers.sort_values("speaker").iloc[rng.permutation(len(speakers))]
    order = order.sort_values("gender", kind="stable")  # genders in blocks, shuffled within each block
    groups: list[list[str]] = [[] for _ in range(num_groups)]
    for i, speaker in enumerate(order["speaker"]):
        groups[i % num_groups].append(speaker)
    return [sorted(g) for g in groups]


def check_fold_count(num_speakers: int, num_folds: int, dev_speakers: int) -> None:
    """ValueError, naming the option to change and the value that works, unless ``num_speakers`` dealt into
    ``num_folds`` folds leave every fold's training part ``dev_speakers`` dev speakers and one to train on."""
    def fits(folds: int) -> bool:  # the largest fold tests ceil(n / k) speakers
        return 2 <= folds <= num_speakers and num_speakers - -(-num_speakers // folds) > dev_speakers

    if fits(num_folds):
        return
    largest = next((k for k in range(num_speakers, 1, -1) if fits(k)), None)
    problem = (f"{num_speakers} speakers cannot fill {num_folds} folds" if num_folds > num_speakers else
               f"{num_folds} folds of {num_speakers} speakers leave a fold too few training speakers to hold "
               f"out {dev_speakers} dev speakers" if num_folds >= 2 else f"--num-folds {num_folds}: cross-validation needs at least 2 folds")
    if largest is not None:
        raise ValueError(f"{problem}: set --num-folds (num_folds) to at most {largest}, or give the manifest more "
                         "speakers")
    # One speaker per fold leaves the most (n - 1) to train on: n - 2 dev speakers at most.
    fix = (f"lower --dev-speakers (dev_speakers) to {num_speakers - 2} with --num-folds {num_speakers}"
           if num_speakers >= 3 else "speaker-independent folds need at least 3 speakers")
    raise ValueError(f"{problem}: {fix}")


def _speaker_table(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.groupby("speaker", as_index=False)["gender"].first()


def _take_dev(train: pd.DataFrame, dev_speakers: int, seed: int, label_column: str | None = None,
              min_per_class: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move ``dev_speakers`` seeded-random speakers from ``train`` to a dev part, alternating genders so that
    dev is as gender-balanced as the count allows.

    With ``label_column`` and ``min_per_class > 0``, further speakers are taken in the same seeded order, each
    only if it adds rows of a class that dev still has fewer than ``min_per_class`` of, until every class of
    ``train`` reaches that count or no speaker can help. Model selection scores UAR on dev: a dev part holding
    one class (most BAVED speakers record a single arousal level) makes it the recall of that class, which
    rewards a classifier that says nothing else. Corpora whose speakers each record every class (RAVDESS) keep
    exactly the first ``dev_speakers``."""
    speakers = _speaker_table(train).sort_values("speaker")
    if dev_speakers < 1 or dev_speakers >= len(speakers):
        raise ValueError(f"cannot take {dev_speakers} dev speakers from {len(speakers)} training speakers: set "
                         f"--dev-speakers (dev_speakers) between 1 and {len(speakers) - 1}")
    rng = np.random.default_rng(seed)
    shuffled = [list(rows["speaker"].iloc[rng.permutation(len(rows))])
                for _, rows in speakers.groupby("gender", sort=True)]
    shuffled.sort(key=len, reverse=True)  # the larger gender first: it takes the odd place
    alternating = [s for group in itertools.zip_longest(*shuffled) for s in group if s is not None]
    chosen = alternating[:dev_speakers]
    if label_column is not None and min_per_class > 0:
        chosen = _cover_classes(train, alternating, dev_speakers, label_column, min_per_class)
    is_dev = train["speaker"].isin(chosen)
    return train[~is_dev], train[is_dev]


def _cover_classes(train: pd.DataFrame, order: list, first: int, label_column: str, min_per_class: int) -> list:
    """The first ``first`` speakers of ``order``, then those of the rest (in turn) that add rows of a class dev
    lacks, skipping any whose move would leave the training part without a class or without a speaker."""
    counts = train.groupby(["speaker", label_column]).size()
    need = {label: min_per_class for label in train[label_column].unique()}
    left = train[label_column].value_counts().to_dict()  # rows of each class still in training
    chosen = []
    for i, speaker in enumerate(order):
        rows = counts[speaker]
        if i >= first:
            if all(n <= 0 for n in need.values()):
                break
            helps = any(need[label] > 0 for label in rows.index)
            keeps = all(left[label] > n for label, n in rows.items()) and len(chosen) + 2 <= len(order)
            if not (helps and keeps):
                continue
        chosen.append(speaker)
        for label, n in rows.items():
            need[label] -= n
            left[label] -= n
    return chosen


def make_splits(manifest: pd.DataFrame, protocol: str = "auto", num_folds: int = 6, dev_speakers: int = 2,
                split_seed: int = 0, source: str = "manifest", label_column: str | None = None,
                dev_min_per_class: int = 0) -> list[Split]:
    """The protocol's splits (see the module docstring). Rows keep the manifest's columns. ``label_column`` and
    ``dev_min_per_class``: dev speakers taken from the training part cover every class (``_take_dev``)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    has_split = manifest["split"].isin(["train", "dev", "test"]).all()
    if protocol == "split" or (protocol == "auto" and has_split):
        if not has_split:
            raise ValueError(f"{source}: protocol 'split' needs train/dev/test in every row's split column")
        check_speaker_disjoint(manifest)
        parts = {name: manifest[manifest["split"] == name] for name in ("train", "dev", "test")}
        if parts["dev"].empty:
            parts["train"], parts["dev"] = _take_dev(parts["train"], dev_speakers, split_seed, label_column,
                                                     dev_min_per_class)
        return [Split("split", *(parts[n].reset_index(drop=True) for n in ("train", "dev", "test")))]

    predefined = (manifest["fold"] >= 0).all()
    if predefined:
        fold_ids = sorted(manifest["fold"].unique())
        test_groups = [sorted(manifest.loc[manifest["fold"] == f, "speaker"].unique()) for f in fold_ids]
        names = [f"fold{f}" for f in fold_ids]
    else:
        check_fold_count(manifest["speaker"].nunique(), num_folds, dev_speakers)
        test_groups = deal_speakers(_speaker_table(manifest), num_folds, split_seed)
        names = [f"fold{i}" for i in range(num_folds)]
    splits = []
    for name, test_speakers in zip(names, test_groups):
        is_test = manifest["speaker"].isin(test_speakers)
        # Dev speakers differ per fold but not per training seed (seeded by the fold's name).
        train, dev = _take_dev(manifest[~is_test], dev_speakers, split_seed + zlib.crc32(name.encode()),
                               label_column, dev_min_per_class)
        splits.append(Split(name, train.reset_index(drop=True), dev.reset_index(drop=True),
                            manifest[is_test].reset_index(drop=True)))
    return splits


def label_subset(train: pd.DataFrame, fraction: float, seed: int, label_column: str = "label") -> pd.DataFrame:
    """A stratified, seeded subset keeping ``fraction`` of each class's rows.

    Nested: for one seed, the rows kept at a smaller fraction are a subset of those kept at a larger one
    (each class's rows are ranked by one seeded permutation and a prefix is kept).
    Raises ValueError when a class would keep no row.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return train
    kept = []
    for label, rows in train.groupby(label_column, sort=True):
        rows = rows.sort_values("path")
        rng = np.random.default_rng([seed, zlib.crc32(str(label).encode())])
        count = int(round(fraction * len(rows)))
        if count == 0:
            raise ValueError(f"label fraction {fraction} leaves class {label!r} empty "
                             f"({len(rows)} training rows); use a larger fraction")
        kept.append(rows.iloc[rng.permutation(len(rows))[:count]])
    return pd.concat(kept).sort_index()
