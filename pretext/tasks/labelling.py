"""Label helpers the built-in tasks share: the group of each segment (speaker, video, folder, corpus), high/low
labels against each group's median, and the frames of a signal that fall inside a segment."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

GROUP_CHOICES = ("auto", "speaker", "video", "corpus")


def resolve_group(table: pd.DataFrame, group: str, min_group_size: int) -> tuple[str, pd.Series]:
    """The grouping key of each segment for median splits (and per-group normalisation).

    ``auto`` chooses per segment, from the finest level that has at least ``min_group_size`` segments: its
    speaker when the manifest names one, else its video; a segment whose speaker or video group is smaller
    (pre-cut clips: one segment each) falls back to its source folder (the ``source`` column: the folder of the
    media file, which in most corpora holds one corpus or session), and only then to the whole corpus. So a
    pool mixing corpora with and without speaker ids keeps per-speaker medians where it can, and a clip of an
    unknown speaker is compared with its own corpus, not with every other corpus. Recording level differs by
    tens of dB between sources, so a corpus-wide median is the last resort, not the default.

    Returns:
        (the level used: ``speaker``, ``video``, ``folder`` or ``corpus`` when one level serves every
        segment, else ``auto (speaker 80%, folder 20%)``-style shares; the key per segment).
    """
    if group not in GROUP_CHOICES:
        raise ValueError(f"group {group!r}: choose from {GROUP_CHOICES}")
    has_speaker = "speaker" in table and table["speaker"].notna().all() and (table["speaker"] != "").all()
    if group == "speaker" and not has_speaker:
        raise ValueError("group 'speaker' needs a speaker for every item (a manifest with a speaker column)")
    if group == "corpus":
        return group, pd.Series("corpus", index=table.index)
    if group != "auto":
        return group, table[_key_column(group)].astype(str)
    if "speaker" in table:
        known = table["speaker"].notna() & (table["speaker"].astype(str) != "")
    else:
        known = pd.Series(False, index=table.index)
    keys = pd.Series("video:" + table["media_id"].astype(str), index=table.index)
    keys[known] = "speaker:" + table.loc[known, "speaker"].astype(str)
    fallbacks = [("folder:" + table["source"].astype(str))] if "source" in table else []
    fallbacks.append(pd.Series("corpus", index=table.index))
    for fallback in fallbacks:
        small = keys.map(keys.value_counts()) < min_group_size
        keys[small] = fallback[small]
    levels = keys.str.split(":").str[0].replace({"corpus": "corpus"})
    shares = levels.value_counts(normalize=True)
    name = shares.index[0] if len(shares) == 1 else "auto (" + ", ".join(
        f"{level} {share:.0%}" for level, share in shares.items()) + ")"
    return (name if len(table) else "corpus"), keys


@dataclass
class MedianSplitConfig:
    """Config fields shared by the high/low tasks (energy, face)."""

    # auto: per speaker when the manifest names speakers, else per video, else the corpus (resolve_group).
    group: str = "auto"
    # Groups with fewer labelled segments get no label: a median of 1-3 values says little.
    min_group_size: int = 4

    def __post_init__(self):
        if self.group not in GROUP_CHOICES:
            raise ValueError(f"group {self.group!r}: choose from {GROUP_CHOICES}")
        if self.min_group_size < 2:
            raise ValueError(f"min_group_size {self.min_group_size}: at least 2 (a median of one says nothing)")


def label_high_low(table: pd.DataFrame, task_name: str, valid: pd.Series, cfg: MedianSplitConfig
                   ) -> tuple[pd.DataFrame, dict]:
    """``<task>_label/_mask/_norm`` columns from ``<task>_value``: high/low against each group's median."""
    group, keys = resolve_group(table, cfg.group, cfg.min_group_size)
    label, mask, normalised = median_split(table[f"{task_name}_value"], valid, keys, cfg.min_group_size)
    columns = {f"{task_name}_label": label, f"{task_name}_mask": mask, f"{task_name}_norm": normalised}
    return table.assign(**columns), {"group": group}


def _key_column(group: str) -> str:
    return {"speaker": "speaker", "video": "media_id"}[group]


def median_split(values: pd.Series, valid: pd.Series, groups: pd.Series, min_group_size: int
                 ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """High/low labels against the median of each group.

    Args:
        values: continuous value per segment.
        valid: whether the value exists (e.g. enough face frames).
        groups: group key per segment.
        min_group_size: groups with fewer valid values get no label (a median of 1-3 values says little).

    Returns:
        (label, mask, normalised value): label 1 when the value is above its group's median, else 0, -1
        where masked; the normalised value is (value - median) / IQR of the group (robust z-score).
    """
    label = pd.Series(-1, index=values.index, dtype=np.int64)
    normalised = pd.Series(np.nan, index=values.index, dtype=np.float64)
    mask = pd.Series(False, index=values.index)
    ok = valid & values.notna()
    for _, idx in values[ok].groupby(groups[ok]).groups.items():
        group_values = values.loc[idx].astype(np.float64)
        if len(group_values) < min_group_size:
            continue
        median = float(np.median(group_values))
        q75, q25 = np.percentile(group_values, [75, 25])
        label.loc[idx] = (group_values > median).astype(np.int64)
        normalised.loc[idx] = (group_values - median) / max(q75 - q25, 1e-6)
        mask.loc[idx] = True
    return label, mask, normalised


@dataclass
class FrameWindow:
    """Frames of a signal that fall inside a segment: boolean selector plus coverage."""

    selected: np.ndarray  # (F,) bool
    coverage: float  # fraction of the segment's frames that are valid


def frames_in(times: np.ndarray, valid: np.ndarray, start: float, end: float) -> FrameWindow:
    """Select frames with ``start <= t < end``; coverage counts valid ones among them."""
    inside = (times >= start) & (times < end)
    n = int(inside.sum())
    selected = inside & valid
    return FrameWindow(selected, float(selected.sum()) / n if n else 0.0)
