"""The classic baseline as a grid mode: openSMILE functionals + class-balanced logistic regression.

Modes ``egemaps`` and ``compare`` of :mod:`finetune.experiment` run here, on the same splits, seeds and label
subsets as ``probe`` and ``finetune`` (:func:`finetune.splits.label_subset`), so every neural cell has a
matched baseline cell. Per cell: the training rows' functionals are standardised (statistics of the training
rows only), a logistic regression with balanced class weights is fitted for each C of :data:`C_GRID`, the C
with the best UAR on the fold's dev speakers is kept, and the fold's test speakers are scored once.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from avpretext.common.audio import AudioError
from avpretext.common.io import write_json_atomic
from finetune.config import FinetuneConfig
from finetune.data import Targets
from finetune.metrics import classification_metrics
from finetune.opensmile_features import FEATURE_SETS, Functionals
from finetune.splits import Split, label_subset

BASELINE_MODES = tuple(FEATURE_SETS)  # egemaps, compare
BASELINE_INIT = "logreg"  # the "init" coordinate of a baseline cell: nothing is pretrained or trained from scratch
C_GRID = (0.001, 0.01, 0.1, 1.0)
# The FinetuneConfig fields a baseline cell's result depends on (the rest configure neural training).
BASELINE_FIELDS = ("manifest", "mode", "classes", "dimensions", "protocol", "num_folds", "fold", "dev_speakers",
                   "dev_min_per_class", "split_seed", "label_fraction", "seed", "skip_bad_audio")


def baseline_settings(config: FinetuneConfig) -> dict:
    """What a baseline cell records and a rerun must match: its split/label fields and the C grid."""
    return {k: getattr(config, k) for k in BASELINE_FIELDS} | {"classifier": BASELINE_INIT, "C_grid": list(C_GRID)}


def fit_logistic(train_x: np.ndarray, train_y: np.ndarray, C: float):
    """Standardised features (training statistics) -> class-balanced multinomial logistic regression."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=3000))
    return model.fit(train_x, train_y)


def select_c(train_x, train_y, dev_x, dev_y, class_names: list[str], grid=C_GRID):
    """The model fitted with the C of ``grid`` that scores the best dev UAR (the smaller C on a tie).

    Returns (fitted model, C, {C: dev UAR})."""
    dev_uar, models = {}, {}
    # One BLAS thread: on small matrices (a few hundred rows) OpenBLAS's threads only contend, and on a loaded
    # 2-core machine a ComParE fit took 60 s with them and 1 s without.
    with threadpool_limits(limits=1, user_api="blas"):
        for C in grid:
            models[C] = fit_logistic(train_x, train_y, C)
            dev_uar[C] = classification_metrics(dev_y, models[C].predict(dev_x), class_names)["uar"]
    best = max(grid, key=lambda c: (dev_uar[c], -c))
    return models[best], best, dev_uar


def _features(functionals: Functionals, rows: pd.DataFrame, skip_bad_audio: bool):
    """(features (N, F), kept rows, [(path, reason)]) of a split part; unreadable files raise AudioError
    unless ``skip_bad_audio`` drops them (listed)."""
    values, skipped = functionals.compute(list(rows["path"]))
    if skipped and not skip_bad_audio:
        raise AudioError(*skipped[0])
    keep = ~np.isnan(values).any(1)
    return values[keep], rows[keep].reset_index(drop=True), skipped


def run_baseline_cell(config: FinetuneConfig, split: Split, targets: Targets, out: Path,
                      functionals=None, write: bool = True, record: dict | None = None) -> dict:
    """One grid cell of mode ``egemaps``/``compare``: fit on the (subsampled) training speakers, choose C on
    the dev speakers, score the test speakers; writes ``out/metrics.json`` (the shape
    :func:`finetune.loop.train_split` writes, so the grid's reports read both).

    ``functionals``: the per-file features (anything with ``compute(paths)`` and ``dim`` like
    :class:`finetune.opensmile_features.Functionals`, which is the default for the mode); mode ``lrprobe``
    passes a frozen encoder's statistics (:mod:`finetune.layer_statistics`) and ``record`` (its init, what the
    features are), which updates the metrics written."""
    if not targets.categorical:
        raise ValueError(f"mode {config.mode}: the logistic-regression classifier needs class labels, not "
                         f"dimensions {targets.dimensions}")
    functionals = functionals or Functionals(config.mode)
    started = time.perf_counter()
    train_rows = split.train
    if config.label_fraction < 1:
        train_rows = label_subset(train_rows, config.label_fraction, config.seed, "label")
    index = {name: i for i, name in enumerate(targets.class_names)}
    parts, skipped = {}, []
    for part, rows in (("train", train_rows), ("dev", split.dev), ("test", split.test)):
        x, kept, bad = _features(functionals, rows, config.skip_bad_audio)
        parts[part], skipped = (x, kept["label"].map(index).to_numpy(np.int64)), skipped + bad
    model, C, dev_by_c = select_c(*parts["train"], *parts["dev"], targets.class_names)
    names = targets.class_names
    result = {"split": split.name, "test": classification_metrics(parts["test"][1], model.predict(parts["test"][0]),
                                                                    names),
              "dev": classification_metrics(parts["dev"][1], model.predict(parts["dev"][0]), names),
              "best_epoch": None, "epochs_run": 0, "C": C, "dev_uar_by_C": {str(c): u for c, u in dev_by_c.items()},
              "init": BASELINE_INIT, "pretrained": False, "mode": config.mode,
              "feature_set": FEATURE_SETS.get(config.mode), "features": functionals.dim,
              "label_fraction": config.label_fraction, "seed": config.seed,
              "train_items": len(parts["train"][1]), "dev_items": len(parts["dev"][1]),
              "test_items": len(parts["test"][1]), "test_speakers": split.test_speakers,
              "dev_speakers": sorted(split.dev["speaker"].unique()), "skipped_bad_audio": skipped,
              "train_seconds": round(time.perf_counter() - started, 2)} | (record or {})
    if write:
        write_json_atomic(Path(out) / "metrics.json", result)
    return result
