"""The EMFACS rule machinery of the AU task: which emotion a face frame's action units show.

The EMFACS prototypes [1] (happiness = AU6+AU12, sadness = AU1+AU4+AU15, surprise = AU1+AU2+AU5+AU26,
fear = AU1+AU2+AU4+AU5+AU7+AU20+AU26, anger = AU4+AU5+AU7+AU23, disgust = AU9+AU15+AU16/17), as Goncalves and
Busso [0] use them to label segments (:mod:`pretext.tasks.au`).

Taken literally on mediapipe-based AU estimates, most prototypes never fire: opposing channels (brow raise vs
brow lower, lid widen vs lid tighten) are never active together in its blendshapes, so AU1+AU4 and AU5+AU7
never co-occur (measured on 2,531 real posed frames: only happiness and surprise fired). Three changes make
every class reachable, all of them data in the task's config (``AUConfig``), not code:

* AU4, AU7, AU9 and AU23 come from mesh geometry as well as blendshapes (see ``data_prep.aus``), so they can
  co-occur with their antagonists;
* intensities are taken relative to a per-speaker (or per-video) baseline, the low percentile of each AU
  (:func:`resting_level`, :func:`corrected_intensity`), so a resting face with a naturally squinting eye or a
  low brow is not read as an expression;
* a rule fires on a partial match: ``min_active`` of its AUs above threshold, including all ``required``
  AUs and at least one of ``any_of``. The frame's class is the firing rule with the most active AUs (then
  the largest share of its AUs, then the strongest); none firing is ``neutral`` (:func:`classify_frames`).

The functions read the config through :class:`RuleConfig`, so this module does not import the task's.

[0] L. Goncalves and C. Busso, Interspeech 2022.
[1] W. Friesen and P. Ekman, EMFACS-7, 1983; prototypes as tabulated by e.g. py-feat and iMotions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from data_prep.aus_pyfeat import PYFEAT_AU_ARRAY


@dataclass
class AURule:
    """One class's rule: at least ``min_active`` of ``aus`` active, all of ``required``, one of ``any_of`` (if any)."""

    aus: list[str]
    min_active: int
    required: list[str] = field(default_factory=list)
    any_of: list[str] = field(default_factory=list)


class RuleConfig(Protocol):
    """The fields of the AU task's config (``pretext.tasks.au.AUConfig``) that the rule machinery reads."""

    source: str  # "mediapipe" or "pyfeat": which AU estimates to read
    scoring: str  # "rules" or "prototypes"
    rules: dict[str, AURule]
    prototypes: dict[str, dict[str, float]]
    thresholds: dict[str, float]  # above-baseline intensity at which each AU counts as active
    min_score: float
    score_cap: float


def default_rules() -> dict[str, AURule]:
    # The EMFACS prototypes (module docstring), with AU16 (absent from the estimates) dropped from disgust
    # and AU10 added (upper lip raiser, the other classic disgust AU).
    return {
        "happiness": AURule(["AU06", "AU12"], min_active=2),
        "sadness": AURule(["AU01", "AU04", "AU15"], min_active=2),
        "surprise": AURule(["AU01", "AU02", "AU05", "AU26"], min_active=3, required=["AU05"]),
        "fear": AURule(["AU01", "AU02", "AU04", "AU05", "AU07", "AU20", "AU26"], min_active=4,
                       required=["AU01"], any_of=["AU04", "AU20"]),
        # Anger needs AU4 and one more of its AUs: on real angry faces (data_prep audit of
        # docs/label_audit.md) the lids tighten (AU7) but AU5 and AU23 estimates stay near rest, so a
        # 3-of-4 rule never fired on angry faces.
        "anger": AURule(["AU04", "AU05", "AU07", "AU23"], min_active=2, required=["AU04"]),
        "disgust": AURule(["AU09", "AU10", "AU15", "AU17"], min_active=2, any_of=["AU09", "AU10"]),
    }


def default_prototypes() -> dict[str, dict[str, float]]:
    # The same EMFACS prototypes as weights for scoring = "prototypes": weight 1 for each of the prototype's
    # AUs (AU16 dropped from disgust, AU10 added, as in the rules).
    return {
        "happiness": {"AU06": 1.0, "AU12": 1.0},
        "sadness": {"AU01": 1.0, "AU04": 1.0, "AU15": 1.0},
        "surprise": {"AU01": 1.0, "AU02": 1.0, "AU05": 1.0, "AU26": 1.0},
        "fear": {"AU01": 1.0, "AU02": 1.0, "AU04": 1.0, "AU05": 1.0, "AU07": 1.0, "AU20": 1.0, "AU26": 1.0},
        "anger": {"AU04": 1.0, "AU05": 1.0, "AU07": 1.0, "AU23": 1.0},
        "disgust": {"AU09": 1.0, "AU10": 1.0, "AU15": 1.0, "AU17": 1.0},
    }


def default_thresholds() -> dict[str, float]:
    # Above-baseline intensity at which an AU counts as active. 0.15 for most; AU15 (mouthFrown) rarely
    # exceeds 0.1 on real faces, and AU26 (jaw drop) needs more because talking opens the jaw all the time.
    thresholds = {au: 0.15 for au in ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
                                      "AU14", "AU17", "AU20", "AU23", "AU24", "AU25")}
    thresholds.update({"AU15": 0.05, "AU26": 0.3})
    return thresholds


def classify_frames(intensity: np.ndarray, au_names: list[str], cfg: RuleConfig) -> np.ndarray:
    """Per-frame class index (0 = neutral, i = i-th rule) from baseline-corrected intensities.

    Args:
        intensity: (T, K) AU intensities above baseline, columns named by ``au_names``.

    Returns:
        (T,) int64 class indices: 0 = neutral, k = the k-th rule of ``cfg.rules`` (the order of
        ``AUConfig.class_names``).
    """
    if cfg.scoring == "prototypes":
        return score_frames(intensity, au_names, cfg)
    col = {name: i for i, name in enumerate(au_names)}
    missing = {au for rule in cfg.rules.values() for au in rule.aus} - set(col)
    if missing:
        raise ValueError(f"AU estimates lack {sorted(missing)} that the rule table uses")
    active = {au: intensity[:, col[au]] >= cfg.thresholds[au] for au in cfg.thresholds if au in col}
    best_count = np.zeros(len(intensity))
    best_share = np.zeros(len(intensity))
    best_strength = np.full(len(intensity), -np.inf)
    label = np.zeros(len(intensity), dtype=np.int64)
    for k, rule in enumerate(cfg.rules.values(), start=1):
        count = np.sum([active[au] for au in rule.aus], axis=0)
        fires = count >= rule.min_active
        for au in rule.required:
            fires &= active[au]
        if rule.any_of:
            fires &= np.any([active[au] for au in rule.any_of], axis=0)
        share = count / len(rule.aus)
        strength = np.mean([intensity[:, col[au]] / cfg.thresholds[au] for au in rule.aus], axis=0)
        # Most active AUs wins (fear = surprise's AUs plus AU4/AU20 must beat surprise), then the larger
        # share of the rule, then the stronger intensities.
        better = fires & ((count > best_count) | ((count == best_count) & (
            (share > best_share) | ((share == best_share) & (strength > best_strength)))))
        label[better] = k
        best_count[better] = count[better]
        best_share[better] = share[better]
        best_strength[better] = strength[better]
    return label


def score_frames(intensity: np.ndarray, au_names: list[str], cfg: RuleConfig) -> np.ndarray:
    """Per-frame class index by prototype scores: ``(T, K) -> (T,)`` int64, 0 = neutral, k = the k-th prototype.

    Each class scores ``sum_a w_a * min(x_a / threshold_a, score_cap) / sum of its positive weights``; a
    negative weight is evidence against the class. The best class wins if its score reaches ``min_score``,
    else the frame is neutral.
    """
    col = {name: i for i, name in enumerate(au_names)}
    missing = {au for weights in cfg.prototypes.values() for au in weights} - set(col)
    if missing:
        raise ValueError(f"AU estimates lack {sorted(missing)} that the prototype table uses")
    scores = np.zeros((len(intensity), len(cfg.prototypes)), dtype=np.float64)
    for k, weights in enumerate(cfg.prototypes.values()):
        units = {au: np.minimum(intensity[:, col[au]] / cfg.thresholds[au], cfg.score_cap) for au in weights}
        total = sum(w * units[au] for au, w in weights.items())
        scores[:, k] = total / sum(w for w in weights.values() if w > 0)
    best = scores.argmax(1) if len(scores) else np.zeros(0, dtype=np.int64)
    return np.where(scores.max(1, initial=-np.inf) >= cfg.min_score, best + 1, 0).astype(np.int64) \
        if len(scores) else best


def resting_level(aus: np.ndarray, present: np.ndarray, percentile: float) -> np.ndarray:
    """Per-AU resting level of one video: the ``percentile`` over face frames. ``(T, K) -> (K,)``."""
    frames = np.asarray(aus)[np.asarray(present)]
    if len(frames) == 0:
        return np.full(aus.shape[1], np.nan, dtype=np.float32)
    return np.nanpercentile(frames, percentile, axis=0).astype(np.float32)


def corrected_intensity(media, cfg: RuleConfig, context=None) -> tuple[list[str], np.ndarray]:
    """(AU names, (T, K) float32 intensities above the media's baseline, 0 where no face or below it)."""
    au_names, aus = au_estimates(media, cfg)
    intensity = np.nan_to_num(np.asarray(aus, dtype=np.float32))
    baseline = (context or {}).get(media.id)
    if baseline is not None:
        intensity = np.clip(intensity - np.nan_to_num(baseline), 0.0, None)
    return au_names, intensity


def au_estimates(media, cfg: RuleConfig) -> tuple[list[str], np.ndarray]:
    """(AU names, (T, K) estimates) of the configured source."""
    if cfg.source == "pyfeat":
        if PYFEAT_AU_ARRAY not in media.face:
            raise ValueError(f"au.source 'pyfeat' but {media.id} was extracted without --au-backend pyfeat")
        return list(media.meta["pyfeat_au_names"]), media.face[PYFEAT_AU_ARRAY]
    return list(media.meta["au_names"]), media.face["aus"]
