"""AU-emotion pretext task: which emotion do the face's action units show while this speech is produced?

Goncalves and Busso [0] derive an emotion class per segment from combinations of facial action units and
predict it from speech. Each face frame gets a class, from the EMFACS rule or prototype table on AU estimates
(``mapping = "rules"``, :mod:`pretext.tasks.au_rules`) or from a classifier fitted on labelled faces
(``mapping = "learned"``, :mod:`data_prep.face_emotion`; the default one, fitted on posed photographs, ships
with the package), which gives class probabilities. A segment takes the emotion seen in at least
``min_fraction`` of its face frames (the most frequent one), else ``neutral`` (``aggregation = "votes"``); with
a learned mapping it may instead take the class of the mean probability over its face frames
(``aggregation = "mean"``).

[0] L. Goncalves and C. Busso, Interspeech 2022.
"""
from __future__ import annotations

import functools
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep.face_emotion import MIN_CORPUS_FRAMES, MIN_CORPUS_ITEMS, corpus_statistics, load_mapping

from .au_rules import (AURule, au_estimates, classify_frames, corrected_intensity, default_prototypes, default_rules,
                       default_thresholds, resting_level)
from .base import ClassificationTask, DemoMedia
from .labelling import frames_in

NEUTRAL = "neutral"
MAPPINGS = ("rules", "learned")
CORPUS_KEY = "__corpus_statistics__"  # fit_context's entry for a learned mapping's corpus standardisation
AGGREGATIONS = ("mean", "votes")


@dataclass
class AUConfig:
    # How frames get a class: "learned" (a classifier fitted on labelled faces, data_prep.face_emotion) or
    # "rules" (the EMFACS rule or prototype table below, on AU estimates). learned by default: on the 28
    # six-emotion dev clips of docs/label_audit.md it labelled 17 correct against 14 for the rules.
    mapping: str = "learned"
    # learned: a mapping file of `data_prep fit-face-emotion`; empty = the one shipped with the package.
    mapping_file: str = ""
    # learned: a segment's class from frame votes ("votes": the most frequent emotion if it holds
    # min_fraction of the face frames, else neutral) or from the mean of its face frames' probabilities
    # ("mean"). votes by default: 17 of 28 dev clips against 16 for mean (docs/label_audit.md; chosen on those
    # clips, a one-clip difference).
    aggregation: str = "votes"
    # learned, mean: the best emotion labels the segment only if its mean probability reaches this and
    # neutral's; else the segment is neutral.
    min_probability: float = 0.0
    # AU estimates to read: mediapipe (blendshapes + geometry, always extracted) or pyfeat (extracted with
    # --au-backend pyfeat; probabilities, so raise the thresholds to about 0.5).
    source: str = "mediapipe"
    # How a frame's class is chosen: "rules" (each class fires when enough of its AUs pass their thresholds;
    # the firing rule with most active AUs wins) or "prototypes" (each class scores the weighted mean of its
    # AUs' intensities in threshold units, capped at score_cap; the best score wins if it reaches min_score).
    scoring: str = "rules"
    # rules: per class its AUs, how many must be active (min_active), those that must be (required) and those
    # of which at least one must be (any_of). A table given in a config replaces this one whole.
    rules: dict[str, AURule] = field(default_factory=default_rules)
    # prototypes: per class a weight per AU. A table given in a config replaces this one whole.
    prototypes: dict[str, dict[str, float]] = field(default_factory=default_prototypes)
    # prototypes: a class needs a score of at least this (1 = its AUs at their thresholds on average).
    min_score: float = 1.0
    # prototypes: one AU counts at most this many thresholds, so one saturated AU cannot carry a class.
    score_cap: float = 2.0
    # Above-baseline intensity at which each AU counts as active (AUs given in a config update these). 0.15 for
    # most; AU15 (mouthFrown) rarely exceeds 0.1 on real faces, AU26 (jaw drop) needs more: talking opens it.
    thresholds: dict[str, float] = field(default_factory=default_thresholds)
    # Whose resting face is subtracted: none (raw estimates), auto (the speaker's videos when the speaker is
    # known, else the videos of its source folder), speaker, video. none by default: on acted faces of
    # people the rules were not written on (docs/label_audit.md, 28 clips of the six emotions) it labelled
    # 14 correct against 11 for auto and 3-7 for per-video or median baselines, and neutral faces stay
    # neutral; every baseline removes part of an expression a speaker holds across clips. Use auto where
    # speakers have marked resting faces (a smiling or frowning face at rest is read as an emotion
    # without it) and also talk calmly in the corpus.
    baseline: str = "none"
    # How a speaker's videos make one baseline: "min" (per AU, the most relaxed of its videos' resting
    # levels) or "median" (of them). The median subtracts what a speaker's clips have in common, so on a
    # speaker filmed in every emotion it removed part of each expression (docs/label_audit.md: W011 2 of 6
    # correct with median, 4 of 6 with min, the same as no baseline), while min still removes a resting
    # face's offsets (a smiling or frowning resting face is not read as an emotion). Its failure mode: with
    # few clips, one whose expression pushes an AU below rest (raised brows: no brow lowering) sets that AU's
    # baseline too low for the others (tests/data_prep/test_audit.py shows it on a synthetic face).
    baseline_pooling: str = "min"
    # Percentile of each AU over the baseline group's face frames taken as its resting level.
    baseline_percentile: float = 10.0
    # Share of a segment's face frames an emotion needs to label the segment (else neutral). A third: at
    # 0.2 a few frames of a passing expression made neutral faces emotional (docs/label_audit.md).
    min_fraction: float = 0.35
    # A segment whose face is visible in fewer of its frames than this has no label (never guessed).
    min_face_coverage: float = 0.5

    def __post_init__(self):
        self.rules = {name: r if isinstance(r, AURule) else AURule(**r) for name, r in self.rules.items()}
        if self.mapping not in MAPPINGS:
            raise ValueError(f"au.mapping {self.mapping!r}: choose from {', '.join(MAPPINGS)}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"au.aggregation {self.aggregation!r}: choose from {', '.join(AGGREGATIONS)}")
        if not 0.0 <= self.min_probability <= 1.0:
            raise ValueError(f"au.min_probability {self.min_probability}: must be between 0 and 1")
        if self.mapping == "learned":
            self.learned()  # a missing or mismatched mapping file is a config error, said before any work
            # A rule or prototype table of the user's would be ignored: say so rather than label without it.
            if self.rules != default_rules() or self.prototypes != default_prototypes():
                raise ValueError("au.rules / au.prototypes are given but au.mapping is 'learned', which does not "
                                 "read them: set au.mapping = 'rules' to label with a rule table")
        if self.source not in ("mediapipe", "pyfeat"):
            raise ValueError(f"au.source {self.source!r}: choose mediapipe or pyfeat")
        if self.scoring not in ("rules", "prototypes"):
            raise ValueError(f"au.scoring {self.scoring!r}: choose rules or prototypes")
        for name, weights in self.prototypes.items():
            unknown = set(weights) - set(self.thresholds)
            if unknown:
                raise ValueError(f"au.prototypes.{name}: AUs without a threshold: {sorted(unknown)}")
            if not any(w > 0 for w in weights.values()):
                raise ValueError(f"au.prototypes.{name}: needs at least one positive weight")
        if self.min_score <= 0 or self.score_cap <= 0:
            raise ValueError("au: min_score and score_cap must be positive")
        if self.baseline_pooling not in ("min", "median"):
            raise ValueError(f"au.baseline_pooling {self.baseline_pooling!r}: choose min or median")
        if self.baseline not in ("auto", "speaker", "video", "none"):
            raise ValueError(f"au.baseline {self.baseline!r}: choose from auto, speaker, video, none")
        for name, rule in self.rules.items():
            unknown = set(rule.aus + rule.required + rule.any_of) - set(self.thresholds)
            if unknown:
                raise ValueError(f"au.rules.{name}: AUs without a threshold: {sorted(unknown)}")
            if not set(rule.required + rule.any_of) <= set(rule.aus):
                raise ValueError(f"au.rules.{name}: required/any_of AUs must be listed in aus")
            if not 1 <= rule.min_active <= len(rule.aus):
                raise ValueError(f"au.rules.{name}: min_active must be between 1 and {len(rule.aus)}")

    @property
    def class_names(self) -> list[str]:
        if self.mapping == "learned":
            return list(self.learned().classes)
        return [NEUTRAL, *(self.prototypes if self.scoring == "prototypes" else self.rules)]

    def learned(self):
        """The face-emotion mapping of ``mapping_file`` (the packaged default when empty), loaded once."""
        return _load_mapping(self.mapping_file or "")

    def describe(self) -> str:
        """Which mapping labels the frames, in one line (label statistics and the audit report it)."""
        if self.mapping == "learned":
            m = self.learned()
            chosen = m.summary.get("chosen", {})
            # The file's digest: the config names only its path, which a refit may overwrite.
            digest = hashlib.sha256(Path(m.source).read_bytes()).hexdigest()[:12]
            return (f"learned ({Path(m.source).name} sha256 {digest}: {chosen.get('model', '?')} on "
                    f"{', '.join(m.feature_groups)}; aggregation {self.aggregation})")
        return f"rules ({self.scoring}, baseline {self.baseline}, min_fraction {self.min_fraction})"


class AUTask(ClassificationTask):
    name = "au"
    Config = AUConfig
    classes = ()  # from the config: see AUConfig.class_names
    label_meaning = "emotion"
    # A user's rule or prototype table is the full set of classes, never merged with the defaults.
    replaced_whole = ("rules", "prototypes")

    def num_classes(self, cfg: AUConfig) -> int:
        return len(cfg.class_names)

    def label_statistics(self, labelled: pd.DataFrame, classes: list[str]) -> tuple[dict, list[str]]:
        """``frame_rule_share``: share of face frames (over the labelled segments, weighted by duration) on
        which each class fired, and a warning naming the rules that never fired."""
        weights = labelled["duration"].to_numpy() * labelled["au_coverage"].to_numpy()
        shares = {c: round(float(np.nansum(labelled[f"au_frac_{c}"].to_numpy() * weights)
                                 / max(weights.sum(), 1e-9)), 5) for c in classes}
        never = [c for c in classes[1:] if shares[c] == 0]
        return {"frame_rule_share": shares}, ([f"classes never given to any face frame: {never}"] if never else [])

    def fit_context(self, medias, cfg: AUConfig) -> dict:
        """Baseline per media id: the minimum (or median) of the resting levels of its group's videos. With a
        learned mapping that standardises by corpus: the corpus statistics of its features under
        :data:`CORPUS_KEY` (None when the corpus is too small: the mapping's own statistics are used)."""
        if cfg.mapping == "learned":
            mapping = cfg.learned()
            if mapping.standardise != "corpus":
                return {}
            faces = [mapping.media_features(m) for m in medias if m.face is not None and np.any(m.face["present"])]
            statistics = corpus_statistics(faces)
            if statistics is None and faces:
                warnings.warn(f"au: {len(faces)} items with a face, fewer than {MIN_CORPUS_ITEMS} (or under "
                              f"{MIN_CORPUS_FRAMES} face frames), are too few to standardise the learned mapping's "
                              "features by this corpus; its training statistics are used, which read faces of "
                              "other cameras less reliably (docs/label_audit.md)", stacklevel=2)
            return {CORPUS_KEY: statistics}
        if cfg.baseline == "none":
            return {}
        if cfg.baseline == "speaker" and not all(m.speaker for m in medias):
            raise ValueError("au.baseline 'speaker' needs a speaker for every item; use auto or video")
        levels = {m.id: resting_level(au_estimates(m, cfg)[1], m.face["present"], cfg.baseline_percentile)
                  for m in medias if m.face is not None and np.any(m.face["present"])}
        if cfg.baseline == "video":
            return levels
        # speaker, or auto: the speaker's videos together; auto groups a video of an unknown speaker with
        # its source folder (as the median groups do, labelling.resolve_group), never alone: its own baseline
        # would remove an expression held through it (measured: per-video baselines labelled the fewest
        # acted clips correctly, docs/label_audit.md). With min pooling a folder of many people gives a
        # baseline near 0 (raw estimates), a folder of one person that person's most relaxed level.

        def group(m) -> str:
            return f"speaker:{m.speaker}" if m.speaker else f"folder:{m.source}"

        groups: dict[str, list[np.ndarray]] = {}
        for m in medias:
            if m.id in levels:
                groups.setdefault(group(m), []).append(levels[m.id])
        pool = np.nanmin if cfg.baseline_pooling == "min" else np.nanmedian
        group_level = {g: pool(np.stack(v), axis=0) for g, v in groups.items()}
        return {m.id: group_level[group(m)] for m in medias if m.id in levels}

    def segment_values(self, media, segments, cfg: AUConfig, context=None) -> list[dict]:
        """Per segment: ``au_coverage`` and ``au_frac_<class>``, the share of face frames of each class."""
        names = cfg.class_names
        empty = {"au_coverage": 0.0, **{f"au_frac_{c}": np.nan for c in names}}
        if media.face is None or not np.any(media.face["present"]):
            return [dict(empty) for _ in segments]
        times = np.asarray(media.face["times"])
        present = np.asarray(media.face["present"])
        if cfg.mapping == "learned":
            proba = np.nan_to_num(cfg.learned().media_probabilities(media, (context or {}).get(CORPUS_KEY)))
            frame_class = proba.argmax(1)
        else:
            au_names, intensity = corrected_intensity(media, cfg, context)
            frame_class, proba = classify_frames(intensity, au_names, cfg), None
        rows = []
        for start, end in segments:
            window = frames_in(times, present, start, end)
            counts = np.bincount(frame_class[window.selected], minlength=len(names))
            fractions = counts / max(counts.sum(), 1)
            row = {"au_coverage": window.coverage, **{f"au_frac_{c}": float(f) for c, f in zip(names, fractions)}}
            if proba is not None:  # mean class probability over the segment's face frames
                mean = proba[window.selected].mean(0) if window.selected.any() else np.full(len(names), np.nan)
                row.update({f"au_prob_{c}": float(v) for c, v in zip(names, mean)})
            rows.append(row)
        return rows

    def demo_values(self, media: DemoMedia, cfg: AUConfig) -> list[dict]:
        """Class shares with neutral on calm segments and an emotion (0.4-0.9 of the frames, in turn over media
        and segments) on lively ones; NaN without a face. A learned mapping also gives each class's mean
        probability (``au_prob_<class>``), as :meth:`segment_values` does."""
        names = cfg.class_names
        columns = ("au_frac", "au_prob") if cfg.mapping == "learned" else ("au_frac",)
        rows = []
        for k, (lively, coverage) in enumerate(zip(media.lively, media.face_coverage)):
            if not coverage:
                rows.append({"au_coverage": 0.0, **{f"{col}_{c}": np.nan for col in columns for c in names}})
                continue
            fractions = np.zeros(len(names))
            fractions[1 + (media.index + k) % (len(names) - 1) if lively else 0] = media.rng.uniform(0.4, 0.9)
            fractions[0] += 1.0 - fractions.sum()
            rows.append({"au_coverage": coverage,
                         **{f"{col}_{c}": float(f) for col in columns for c, f in zip(names, fractions)}})
        return rows

    def audit_values(self, media, segments, cfg: AUConfig, context=None) -> list[dict]:
        """Per segment and AU: ``mean AUxx`` (mean intensity above the baseline over face frames) and
        ``active AUxx`` (share of face frames at or above the AU's threshold): which AUs move, and whether
        a rule's AUs ever pass their thresholds."""
        if media.face is None or not np.any(media.face["present"]):
            return [{} for _ in segments]
        au_names, intensity = corrected_intensity(media, cfg, context)
        times, present = np.asarray(media.face["times"]), np.asarray(media.face["present"])
        rows = []
        for start, end in segments:
            frames = intensity[frames_in(times, present, start, end).selected]
            if not len(frames):
                rows.append({})
                continue
            row = {f"mean {au}": float(frames[:, k].mean()) for k, au in enumerate(au_names)}
            row.update({f"active {au}": float((frames[:, k] >= cfg.thresholds[au]).mean())
                        for k, au in enumerate(au_names) if au in cfg.thresholds})
            rows.append(row)
        return rows

    def assign_labels(self, table: pd.DataFrame, cfg: AUConfig) -> tuple[pd.DataFrame, dict]:
        names = cfg.class_names
        if cfg.mapping == "learned" and cfg.aggregation == "mean":
            label = _label_by_mean_probability(table, names, cfg.min_probability)
        else:
            label = _label_by_votes(table, names, cfg.min_fraction)
        mask = (table["au_coverage"] >= cfg.min_face_coverage).to_numpy()
        label[~mask] = -1
        class_name = np.where(mask, np.array(names, dtype=object)[np.maximum(label, 0)], None)
        return table.assign(au_label=label, au_mask=mask, au_class=class_name), {"classes": names,
                                                                                 "mapping": cfg.describe()}


def _label_by_votes(table: pd.DataFrame, names: list[str], min_fraction: float) -> np.ndarray:
    """The most frequent emotion of a segment's frames if it holds ``min_fraction`` of them, else neutral."""
    fractions = table[[f"au_frac_{c}" for c in names[1:]]].to_numpy(dtype=np.float64)
    if not len(table):
        return np.zeros(0, dtype=np.int64)
    best = np.nanargmax(np.nan_to_num(fractions, nan=-1.0), axis=1) + 1
    best_fraction = np.take_along_axis(np.nan_to_num(fractions), (best - 1)[:, None], axis=1)[:, 0]
    return np.where(best_fraction >= min_fraction, best, 0).astype(np.int64)


def _label_by_mean_probability(table: pd.DataFrame, names: list[str], min_probability: float) -> np.ndarray:
    """The emotion of highest mean probability if it reaches ``min_probability`` and neutral's, else neutral."""
    if not len(table):
        return np.zeros(0, dtype=np.int64)
    proba = np.nan_to_num(table[[f"au_prob_{c}" for c in names]].to_numpy(dtype=np.float64))
    best = proba[:, 1:].argmax(1) + 1
    top = proba[np.arange(len(proba)), best]
    return np.where((top >= min_probability) & (top >= proba[:, 0]), best, 0).astype(np.int64)


@functools.lru_cache(maxsize=8)
def _load_mapping(path: str):
    return load_mapping(path or None)
