"""Manifest rows -> the segment-table shape that :class:`avpretext.common.batches.SegmentDataset` reads.

Fine-tuning reuses pretraining's dataset (seeking reads, seeded crops, bad-audio handling, padding collate):
one whole utterance is one segment, and the emotion is one more "task" column pair
(``<target>_label`` / ``<target>_mask``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import soundfile as sf

from avpretext.common.audio import audio_error

EMOTION = "emotion"  # the target name of categorical SER
# What "no crop" reads: longer than any utterance (a day of audio), as a crop length SegmentDataset accepts.
WHOLE_UTTERANCE_SECONDS = 24 * 3600.0


def read_seconds(config) -> tuple[float, float]:
    """(training crop, evaluation limit) in seconds. With dynamic chunking both are whole utterances: the
    method maps each whole utterance to a fixed number of chunks, so a batch of B utterances is B x C chunks
    (:mod:`finetune.chunking`); otherwise ``max_seconds`` and ``eval_max_seconds``."""
    if config.chunk_seconds and config.chunk_mode == "dynamic":
        return WHOLE_UTTERANCE_SECONDS, WHOLE_UTTERANCE_SECONDS
    return config.max_seconds, config.eval_max_seconds


@dataclass
class Targets:
    """What is predicted: class names (categorical) or dimension names (continuous, e.g. arousal)."""

    class_names: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)

    @property
    def categorical(self) -> bool:
        return not self.dimensions

    @property
    def names(self) -> list[str]:
        """Target (task) names used as dataset columns."""
        return [EMOTION] if self.categorical else list(self.dimensions)

    @property
    def num_outputs(self) -> int:
        return len(self.class_names) if self.categorical else len(self.dimensions)


def resolve_targets(manifest: pd.DataFrame, classes: str = "", dimensions: str = "", source: str = "manifest"
                    ) -> Targets:
    """Class names (``classes`` comma list, else the manifest's labels sorted) or ``dimensions`` columns.

    Raises ValueError listing label values outside ``classes`` and missing dimension columns.
    """
    if dimensions:
        names = [d.strip() for d in dimensions.split(",") if d.strip()]
        missing = [d for d in names if d not in manifest]
        if missing:
            raise ValueError(f"{source}: no column for dimension(s) {missing}; columns: {list(manifest.columns)}")
        return Targets(dimensions=names)
    present = sorted(manifest["label"].unique())
    if not classes:
        return Targets(class_names=present)
    names = [c.strip() for c in classes.split(",") if c.strip()]
    unknown = sorted(set(present) - set(names))
    if unknown:
        counts = manifest["label"].value_counts()
        listed = ", ".join(f"{u!r} ({counts[u]} rows)" for u in unknown)
        raise ValueError(f"{source}: label values not in --classes {names}: {listed}")
    return Targets(class_names=names)


def probe_durations(manifest: pd.DataFrame, skip_bad_audio: bool) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Add ``duration_s`` from each file's header. Unreadable files raise :class:`AudioError` naming the file,
    or with ``skip_bad_audio`` are dropped and returned as ``(path, reason)``."""
    durations, skipped = [], []
    for path in manifest["path"]:
        try:
            durations.append(sf.info(path).duration)
        except Exception as err:  # soundfile raises several types for missing/corrupt files
            error = audio_error(path, err)  # "file not found" rather than libsndfile's "System error."
            if not skip_bad_audio:
                raise error from err
            skipped.append((str(path), str(error)))
            durations.append(np.nan)
    table = manifest.assign(duration_s=durations)
    return table[table["duration_s"].notna()].reset_index(drop=True), skipped


def segment_table(rows: pd.DataFrame, targets: Targets) -> pd.DataFrame:
    """Manifest rows with ``duration_s`` -> ``audio_path, start, end, <target>_label, <target>_mask``."""
    table = pd.DataFrame({"audio_path": rows["path"].to_numpy(), "start": 0.0,
                          "end": rows["duration_s"].to_numpy(), "speaker": rows["speaker"].to_numpy()})
    if targets.categorical:
        index = {name: i for i, name in enumerate(targets.class_names)}
        table[f"{EMOTION}_label"] = rows["label"].map(index).to_numpy(np.int64)
        table[f"{EMOTION}_mask"] = True
    else:
        for dim in targets.dimensions:
            values = rows[dim].to_numpy(np.float32)
            table[f"{dim}_label"] = np.nan_to_num(values)
            table[f"{dim}_mask"] = ~np.isnan(values)
    return table
