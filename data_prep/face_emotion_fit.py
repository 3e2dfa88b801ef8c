"""Fitting a face-emotion mapping (:mod:`data_prep.face_emotion`) on labelled faces, identities kept apart.

Input: labelled images or videos, as a CSV manifest (``path,emotion,identity``; relative paths relative to
the manifest) or a folder with one sub-folder per emotion (``happy/x.jpg``; the identity is the next folder
when there is one, ``happy/anna/x.jpg``, else the file, so nothing can be kept apart). The files are
extracted with ``data_prep extract`` (resumable, images in IMAGE mode), every face frame becomes a sample
labelled with its item's emotion, and

1. a small grid of feature groups x classifiers (multinomial logistic regression, also fitted on the faces'
   mirror images; a one-hidden-layer MLP is available) is scored by grouped cross-validation over identities
   (``GroupKFold``): every face is scored by a model that never saw its identity;
2. the best configuration (item-level UAR) is refitted on everything and saved as JSON.

Shapes: ``X`` (N, F) float features, ``y`` (N,) class indices into :data:`EMOTION_CLASSES`, ``groups`` (N,)
identities.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avpretext.common.metrics import classification_metrics

from .executors import ProcessExecutor
from .extract import ExtractOptions, extract_corpus
from .face_emotion import (EMOTION_ALIASES, EMOTION_CLASSES, FaceEmotionMapping, MappingError, feature_names,
                           frame_features, mirror_permutation)
from .signals import list_done_items, load_media
from .sources import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS

# Candidate feature sets: the blendshapes alone (the plain baseline), with the AU estimates, with the
# normalised geometry, and the upper face only (what speech moves little).
CANDIDATE_FEATURES: dict[str, list[str]] = {
    "blendshapes": ["blendshapes"],
    "blendshapes+aus": ["blendshapes", "aus"],
    "blendshapes+aus+geometry": ["blendshapes", "aus", "geometry"],
    "blendshapes+aus+geometry+measures": ["blendshapes", "aus", "geometry", "measures"],
    "upper face": ["blendshapes_upper", "aus_upper", "geometry_upper"],
}
# Multinomial logistic regression, strongly regularised: on expression_faces (docs/label_audit.md) C = 1 and
# a 32-unit MLP scored below C = 0.1 in every feature set; an RBF SVM, gradient-boosted trees and MLPs with
# early stopping did not beat it either (docs/results/face_emotion/README.md). "mirrored": every training face
# also enters mirrored (mirror_permutation), so the mapping reads a face and its mirror image alike.
CANDIDATE_MODELS: dict[str, dict] = {
    "logreg C=0.03": {"kind": "logreg", "C": 0.03},
    "logreg C=0.1": {"kind": "logreg", "C": 0.1},
    "logreg C=0.01 mirrored": {"kind": "logreg", "C": 0.01, "mirror": True},
}
# How features are standardised in fitting (fit_face_emotion): "corpus" centres each training corpus on its
# neutral faces (labelling: the corpus's median frame), "corpus-mean" on its mean (labelling: the corpus mean),
# "training" uses the training statistics only.
STANDARDISATIONS = ("corpus", "corpus-mean", "training")
# Frames taken from one video item (evenly spaced): a long clip must not outweigh many photographs.
MAX_FRAMES_PER_ITEM = 30


@dataclass
class LabelledSamples:
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    item_ids: np.ndarray
    feature_groups: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    corpus: np.ndarray | None = None  # (N,) the corpus of each sample (the manifest's corpus column, else "")

    def standardised_by_corpus(self, centre: str = "neutral") -> np.ndarray:
        """``X`` with each corpus's samples scaled by that corpus's own deviation and centred on the mean of
        its neutral samples (``centre="neutral"``; its mean when it has none) or on its mean (``"mean"``)."""
        out = np.empty_like(self.X, dtype=np.float64)
        for name in set(self.corpus):
            rows = self.corpus == name
            neutral = rows & (self.y == 0)
            origin = self.X[neutral].mean(0) if centre == "neutral" and neutral.any() else self.X[rows].mean(0)
            out[rows] = (self.X[rows] - origin) / np.maximum(self.X[rows].std(0), 1e-6)
        return out


def read_labelled_source(source: str | Path) -> list[dict]:
    """``[{"path", "relpath", "emotion", "identity"}]`` of a manifest or emotion-folder tree; the emotion is
    canonical (:data:`EMOTION_ALIASES`), rows of other emotions (contempt, calm) are dropped.

    Raises:
        ValueError: no such source, a manifest without ``path``/``emotion`` columns, or no usable row.
    """

    source = Path(source)
    rows = []
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.suffix.lower() in MEDIA_EXTENSIONS | IMAGE_EXTENSIONS):
            rel = path.relative_to(source)
            if len(rel.parts) < 2:
                continue
            identity = rel.parts[1] if len(rel.parts) > 2 else rel.as_posix()
            rows.append({"path": str(path), "relpath": rel.as_posix(), "emotion": rel.parts[0], "identity": identity,
                         "corpus": ""})
    elif source.is_file():
        with open(source, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"path", "emotion"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{source}: a labelled manifest needs columns path, emotion (and identity); "
                                 f"missing {sorted(missing)}")
            for row in reader:
                rel = row["path"]
                path = Path(rel) if Path(rel).is_absolute() else source.parent / rel
                rows.append({"path": str(path), "relpath": rel, "emotion": row["emotion"],
                             "identity": row.get("identity") or row.get("speaker") or rel,
                             "corpus": row.get("corpus") or ""})
    else:
        raise ValueError(f"{source}: no such manifest or folder")
    usable = []
    for row in rows:
        emotion = EMOTION_ALIASES.get(row["emotion"].strip().lower(), row["emotion"].strip().lower())
        if emotion in EMOTION_CLASSES:
            usable.append({**row, "emotion": emotion})
    if not usable:
        raise ValueError(f"{source}: no file labelled with one of {list(EMOTION_CLASSES)} (or their aliases)")
    return usable


def collect_samples(extract_dir: str | Path, rows: list[dict], feature_groups: list[str],
                    max_frames: int = MAX_FRAMES_PER_ITEM) -> LabelledSamples:
    """Face-frame features of the extracted items of ``rows`` (matched by absolute path), with labels and
    identities. Items that failed or show no face are listed in ``skipped``."""

    by_path = {str(Path(r["path"]).resolve()): r for r in rows}
    X, y, groups, ids, corpus = [], [], [], [], []
    seen, with_samples = set(), set()
    for item_id in list_done_items(extract_dir):
        media = load_media(extract_dir, item_id)
        path = str(Path(media.meta["path"]).resolve())
        row = by_path.get(path)
        if row is None:
            continue
        seen.add(path)
        if media.face is None or not np.any(media.face["present"]):
            continue
        features = frame_features(media.face, media.frame_size, list(media.meta["au_names"]), feature_groups)
        features = features[np.isfinite(features).all(1)]
        if len(features):
            with_samples.add(path)
        if len(features) > max_frames:
            features = features[np.linspace(0, len(features) - 1, max_frames).round().astype(int)]
        X.append(features)
        y += [EMOTION_CLASSES.index(row["emotion"])] * len(features)
        groups += [row["identity"]] * len(features)
        ids += [item_id] * len(features)
        corpus += [row.get("corpus", "")] * len(features)
    skipped = {r["relpath"]: ("no face found" if p in seen else "not extracted (failed or missing)")
               for p, r in by_path.items() if p not in with_samples}
    return LabelledSamples(np.concatenate(X) if X else np.zeros((0, len(feature_names(feature_groups))), np.float32),
                           np.asarray(y, dtype=np.int64), np.asarray(groups, dtype=object),
                           np.asarray(ids, dtype=object), list(feature_groups), skipped,
                           np.asarray(corpus, dtype=object))


def fit_classifier(X: np.ndarray, y: np.ndarray, model: dict, seed: int = 0, features: list[str] | None = None):
    """A fitted scikit-learn pipeline (standardisation + classifier) on ``X (N, F)``, ``y (N,)``; a model with
    ``"mirror": True`` is fitted on the rows and their mirror images (``features``: the column names)."""
    # scikit-learn is heavy to import (seconds) and only fitting needs it, not applying a mapping.
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model["kind"] == "logreg":
        clf = LogisticRegression(C=model["C"], max_iter=3000, class_weight="balanced")
    else:
        clf = MLPClassifier(hidden_layer_sizes=(model["hidden"],), alpha=model["alpha"], max_iter=800,
                            random_state=seed)
    if model.get("mirror"):
        if features is None:
            raise ValueError("a mirrored model needs the feature names")
        perm, sign = mirror_permutation(features)
        X, y = np.vstack([X, X[:, perm] * sign]), np.concatenate([y, y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the small grid: the CV score judges them
        return make_pipeline(StandardScaler(), clf).fit(X, y)


def predict_all_classes(pipeline, X: np.ndarray, n_classes: int = len(EMOTION_CLASSES)) -> np.ndarray:
    """``(N, n_classes)`` probabilities, zero for classes absent from the pipeline's training data."""
    out = np.zeros((len(X), n_classes))
    out[:, pipeline.classes_] = pipeline.predict_proba(X)
    return out


def group_folds(groups: np.ndarray, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold splits over identities (at most one fold per identity)."""
    from sklearn.model_selection import GroupKFold  # heavy; only the fitting command needs it

    n = min(n_splits, len(set(groups)))
    if n < 2:
        raise ValueError(f"need at least 2 identities to keep them apart in validation (got {len(set(groups))})")
    return list(GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups))


def cv_probabilities(X, y, groups, model: dict, n_splits: int, features: list[str] | None = None) -> np.ndarray:
    """Out-of-fold ``(N, C)`` probabilities with identities held out."""
    out = np.zeros((len(y), len(EMOTION_CLASSES)))
    for train, test in group_folds(groups, n_splits):
        out[test] = predict_all_classes(fit_classifier(X[train], y[train], model, features=features), X[test])
    return out


def item_probabilities(proba: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability per item: ``(N, C) -> (items, C)`` and the index of each item's first sample."""
    _, first, inverse = np.unique(item_ids, return_index=True, return_inverse=True)
    sums = np.zeros((len(first), proba.shape[1]))
    np.add.at(sums, inverse, proba)
    return sums / np.bincount(inverse)[:, None], first


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, UAR and per-class recall over all 7 classes and over the six emotions' items (a neutral
    prediction of an emotional face counts as wrong)."""
    classes = list(EMOTION_CLASSES)
    full = classification_metrics(y_true, y_pred, classes)
    emotional = y_true > 0
    six = classification_metrics(y_true[emotional], y_pred[emotional], classes) if emotional.any() else None
    recall = {c: full["per_class"][c]["recall"] for c in classes if (y_true == classes.index(c)).any()}
    return {"n": int(len(y_true)), "accuracy": round(full["accuracy"], 4), "uar": round(full["uar"], 4),
            "six_emotion_n": int(emotional.sum()),
            "six_emotion_accuracy": round(six["accuracy"], 4) if six else None,
            "six_emotion_uar": round(float(np.mean([recall[c] for c in classes[1:] if c in recall])), 4)
            if six else None,
            "recall": {c: round(r, 4) for c, r in recall.items()}}


@dataclass
class FitResult:
    mapping: FaceEmotionMapping
    summary: dict
    oof: dict = field(default_factory=dict)  # out-of-fold item predictions of the nested CV


def fit_face_emotion(samples_by_features: dict[str, LabelledSamples], n_splits: int = 5,
                     models: dict[str, dict] | None = None, progress=print, standardise: str = "corpus"
                     ) -> FitResult:
    """Grouped CV (identities held out) of every feature set x model, then a refit of the best on all samples.

    The choice is the candidate with the best item-level UAR of that CV; its CV figures are reported as
    they are (chosen among few candidates on the same folds, so slightly optimistic).

    Args:
        samples_by_features: candidate name -> its samples (same items and order in each).
        n_splits: GroupKFold folds over identities.
        standardise: "corpus" (each training corpus scaled by its own spread and centred on its neutral
            faces; the label stage centres the corpus it labels on its median frame, which in a corpus of
            mostly relaxed faces is a relaxed face), "corpus-mean" (each corpus centred on its mean, in fitting
            and labelling: the mappings of 2026-12-06/07, which read neutral talking as fear) or "training".
            The corpus statistics are unsupervised except for the neutral centre, which uses the training
            labels of the corpus (in cross-validation, held-out identities' neutral faces included: a centre
            over many identities, not a per-face reference).
        models: candidate classifiers (default :data:`CANDIDATE_MODELS`).

    Returns:
        The fitted mapping (its ``summary`` holds the CV scores), and the chosen candidate's out-of-fold
        item probabilities.
    """
    models = models or CANDIDATE_MODELS
    first = next(iter(samples_by_features.values()))
    y, groups, item_ids = first.y, first.groups, first.item_ids
    table, oof = {}, {}
    if standardise not in STANDARDISATIONS:
        raise ValueError(f"standardise {standardise!r}: choose from {', '.join(STANDARDISATIONS)}")
    by_corpus = standardise in ("corpus", "corpus-mean")
    inputs = {feats: s.standardised_by_corpus("neutral" if standardise == "corpus" else "mean") if by_corpus
              else s.X for feats, s in samples_by_features.items()}
    for feats, s in samples_by_features.items():
        for model, spec in models.items():
            names = feature_names(s.feature_groups)
            mean, firsts = item_probabilities(cv_probabilities(inputs[feats], y, groups, spec, n_splits, names),
                                              item_ids)
            truth = y[firsts]
            key = f"{feats} | {model}"
            table[key] = scores(truth, mean.argmax(1))
            oof[key] = {"item_ids": item_ids[firsts], "truth": truth, "proba": mean}
            progress(f"{key}: UAR {table[key]['uar']:.1%}, six-emotion accuracy "
                     f"{table[key]['six_emotion_accuracy']:.1%}")
    best = max(table, key=lambda k: table[k]["uar"])
    feats, model = best.split(" | ")
    s = samples_by_features[feats]
    pipeline = fit_classifier(inputs[feats], y, models[model], features=feature_names(s.feature_groups))
    item_y = oof[best]["truth"]
    summary = {"samples": int(len(y)), "items": int(len(item_y)), "identities": int(len(set(groups))),
               "class_counts": {c: int((item_y == i).sum()) for i, c in enumerate(EMOTION_CLASSES)},
               "cv": f"GroupKFold over identities, {min(n_splits, len(set(groups)))} folds; item = mean "
                     "probability of its face frames; chosen by UAR on these folds",
               "chosen": {"features": feats, "model": model, "standardise": standardise},
               "corpora": sorted(set(s.corpus)), "cv_scores": table[best],
               "candidates": {k: {"uar": v["uar"], "accuracy": v["accuracy"],
                                  "six_emotion_accuracy": v["six_emotion_accuracy"]} for k, v in table.items()}}
    mapping = mapping_from_pipeline(pipeline, s.feature_groups, summary)
    if by_corpus:
        mapping.standardise = "corpus"
        # A corpus too small for its own statistics (one photograph) is read against the training faces: their
        # neutral mean for a neutral-centred mapping.
        neutral = y == 0
        centre = s.X[neutral] if standardise == "corpus" and neutral.any() else s.X
        mapping.corpus_reference = "median" if standardise == "corpus" else "mean"
        mapping.fallback_mean = centre.mean(0).astype(np.float64)
        mapping.fallback_scale = np.maximum(s.X.std(0), 1e-6).astype(np.float64)
    return FitResult(mapping, summary, oof[best])


def mapping_from_pipeline(pipeline, feature_groups: list[str], summary: dict) -> FaceEmotionMapping:
    """The numpy mapping of a fitted StandardScaler + (LogisticRegression | MLPClassifier) pipeline, with
    rows for all :data:`EMOTION_CLASSES` (a class absent from the training data gets a -1e4 bias)."""
    scaler, clf = pipeline[0], pipeline[-1]
    if hasattr(clf, "coefs_"):
        layers = [(w.T.astype(np.float64), b.astype(np.float64)) for w, b in zip(clf.coefs_, clf.intercepts_)]
        if len(clf.classes_) == 2:  # sklearn's binary MLP has one logistic output: logit = [0, z]
            w, b = layers[-1]
            layers[-1] = (np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b]))
    else:
        w, b = clf.coef_.astype(np.float64), clf.intercept_.astype(np.float64)
        if len(clf.classes_) == 2:
            w, b = np.vstack([-w / 2, w / 2]), np.concatenate([-b / 2, b / 2])
        layers = [(w, b)]
    last_w, last_b = layers[-1]
    full_w = np.zeros((len(EMOTION_CLASSES), last_w.shape[1]))
    full_b = np.full(len(EMOTION_CLASSES), -1e4)
    full_w[clf.classes_], full_b[clf.classes_] = last_w, last_b
    layers[-1] = (full_w, full_b)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    return FaceEmotionMapping(list(EMOTION_CLASSES), list(feature_groups), feature_names(feature_groups),
                              scaler.mean_.astype(np.float64), scale.astype(np.float64), layers, summary)


__all__ = ["CANDIDATE_FEATURES", "CANDIDATE_MODELS", "FitResult", "LabelledSamples", "MappingError",
           "collect_samples", "fit_face_emotion", "read_labelled_source"]


def default_extract_dir(out: str | Path) -> Path:
    """Where the fitting command keeps its extraction (resumable): beside the mapping file."""
    out = Path(out)
    return out.with_name(out.stem + "_extract")


def run_fit(source: str | Path, out: str | Path, extract_dir: str | Path | None = None,
            features: list[str] | None = None, n_splits: int = 5, workers: int | None = 1,
            face_model: str | None = None, progress: bool = True, standardise: str = "corpus") -> FitResult:
    """``data_prep fit-face-emotion``: extract ``source`` (resumable), fit by nested grouped CV, save ``out``.

    Args:
        source: labelled manifest (``path,emotion,identity``) or emotion-folder tree.
        out: the mapping JSON to write (atomically, only after the fit succeeded).
        extract_dir: extraction folder (default :func:`default_extract_dir`).
        features: candidate names of :data:`CANDIDATE_FEATURES` to try (default: all).

    Raises:
        ValueError: a bad source, unknown candidate names, fewer than two identities or classes.
    """

    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out}: a folder; give the mapping's file name (e.g. mapping.json)")
    names = features or list(CANDIDATE_FEATURES)
    unknown = [n for n in names if n not in CANDIDATE_FEATURES]
    if unknown:
        raise ValueError(f"--features {unknown}: choose from {list(CANDIDATE_FEATURES)}")
    rows = read_labelled_source(source)
    if len({r["identity"] for r in rows}) < 2:
        raise ValueError(f"{source}: needs at least 2 identities to keep them apart between fitting and checking")
    extract_dir = Path(extract_dir) if extract_dir else default_extract_dir(out)
    summary = extract_corpus(source, extract_dir, ExtractOptions(face_model=face_model),
                             executor=ProcessExecutor(workers), progress=progress)
    if progress and summary.failed:
        print(f"{len(summary.failed)} files failed to extract (see {extract_dir}/failed); fitting on the others")
    samples = {n: collect_samples(extract_dir, rows, CANDIDATE_FEATURES[n]) for n in names}
    first = next(iter(samples.values()))
    if len(set(first.y)) < 2:
        raise ValueError(f"{source}: face frames of fewer than 2 classes were found; nothing to fit")
    if standardise not in STANDARDISATIONS:
        raise ValueError(f"--standardise {standardise!r}: choose from {', '.join(STANDARDISATIONS)}")
    result = fit_face_emotion(samples, n_splits, progress=print if progress else (lambda *_: None),
                              standardise=standardise)
    result.summary["source"] = str(source)
    result.summary["files_without_samples"] = len(first.skipped)
    result.mapping.summary = result.summary
    result.mapping.save(out)
    return result


def format_fit(result: FitResult) -> str:
    """Console summary of a fit: the choice and its nested leave-identities-out scores."""
    s = result.summary
    cv = s["cv_scores"]
    recall = ", ".join(f"{c} {r:.0%}" for c, r in cv["recall"].items())
    return "\n".join([
        f"fitted on {s['items']} items ({s['samples']} face frames) of {s['identities']} identities; "
        f"{s.get('files_without_samples', 0)} files without a face or not extracted",
        f"chosen: {s['chosen']['features']} | {s['chosen']['model']}",
        f"identities held out ({s['cv']}): accuracy {cv['accuracy']:.1%}, UAR {cv['uar']:.1%} (7 classes); "
        f"six emotions: accuracy {cv['six_emotion_accuracy']:.1%}, UAR {cv['six_emotion_uar']:.1%}",
        f"recall: {recall}"])
