"""Segments -> training batches: audio read with seeking, random crop/pad, labels and masks per task."""
from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .audio import SAMPLE_RATE, AudioError, read_audio

def split_by_media(table: pd.DataFrame, val_fraction: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, val): whole media items go to one side (by a seeded hash of the id), never single segments,
    so a validation segment never shares a recording with a training one."""
    media = sorted(table["media_id"].unique())
    if val_fraction <= 0 or len(media) < 2:
        return table.reset_index(drop=True), table.iloc[:0]
    scores = {m: zlib.crc32(f"{seed}:{m}".encode()) for m in media}
    n_val = max(1, int(round(val_fraction * len(media))))
    val_ids = set(sorted(media, key=scores.get)[:n_val])
    is_val = table["media_id"].isin(val_ids)
    return table[~is_val].reset_index(drop=True), table[is_val].reset_index(drop=True)


def _label_tensor(column: pd.Series) -> torch.Tensor:
    values = column.to_numpy()
    if np.issubdtype(values.dtype, np.floating):
        return torch.tensor(values.astype(np.float32))
    return torch.tensor(values.astype(np.int64))


def batches_per_process(items: int, batch_size: int, processes: int = 1, drop_last: bool = False) -> int:
    """Batches each process's loader yields per epoch once ``accelerator.prepare`` has sharded it.

    Accelerate deals whole batches round-robin and keeps the count equal on every process: with
    ``drop_last`` it drops the incomplete batch and then the incomplete round (so 20 items in batches of 16
    on 2 processes give each process nothing), without it it completes both by cycling from the start.
    """
    if items <= 0:
        return 0
    if drop_last:
        return items // batch_size // processes
    return math.ceil(math.ceil(items / batch_size) / processes)


def train_drop_last(items: int, batch_size: int, processes: int = 1) -> bool:
    """Whether a training loader should drop its incomplete last batch: yes (every step sees a full batch)
    unless that would leave a process an epoch without any batch, which would never take a step."""
    return batches_per_process(items, batch_size, processes, drop_last=True) > 0


def check_can_progress(items: int, batch_size: int, processes: int, drop_last: bool, what: str,
                       hint: str = "add data") -> int:
    """Batches per process and epoch; ValueError naming the counts and ``hint`` (what to change) when an
    epoch would yield none: a loop waiting for a step would spin forever. Both trainers call it before
    training."""
    batches = batches_per_process(items, batch_size, processes, drop_last)
    if batches == 0:
        raise ValueError(f"{what} has {items} item(s): no batch of {batch_size} per process x {processes} "
                         f"process(es) per epoch, so training can make no step; "
                         + (hint if items == 0 else "lower --batch-size"))
    return batches


class SegmentDataset(Dataset):
    """One item per segment: ``(wav (T,) float32, {task: label}, {task: labelled})``.

    Args:
        table: the segment table (``data_prep.segments.load_segments``).
        tasks: task names whose ``<name>_label``/``<name>_mask`` columns are read.
        max_seconds: longer segments are cropped to this (randomly when ``random_crop``, else centred).
        random_crop: training crops vary per epoch (seeded by ``seed`` and the epoch). The epoch travels in
            the index (``epoch * len(dataset) + i``, as :class:`pretext.train.EpochSampler` yields it), so
            persistent loader workers need no notification when an epoch starts.
        skip_bad_audio: return None for unreadable audio (dropped by :func:`collate`) instead of raising.
        frame_targets: {task: f(row, start, stop) -> (F, D + 1) array} for tasks whose targets are frames of
            the crop (samples ``[start, stop)`` of the file, 16 kHz): their label is that array, not
            ``<task>_label`` (``pretext.tasks.base.PretextTask.frame_targets``).
    """

    def __init__(self, table: pd.DataFrame, tasks: list[str], max_seconds: float = 6.0, random_crop: bool = True,
                 seed: int = 0, skip_bad_audio: bool = False, frame_targets: dict | None = None):
        self.table = table.reset_index(drop=True)
        self.tasks = tasks
        self.max_samples = int(max_seconds * SAMPLE_RATE)
        self.random_crop = random_crop
        self.seed = seed
        self.skip_bad_audio = skip_bad_audio
        self.frame_targets = dict(frame_targets or {})
        # Class indices stay int64; continuous targets (e.g. arousal) become float32.
        self.labels = {t: _label_tensor(self.table[f"{t}_label"]) for t in tasks}
        self.masks = {t: torch.tensor(self.table[f"{t}_mask"].to_numpy(bool)) for t in tasks}

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key: int):
        epoch, index = divmod(int(key), len(self.table))
        row = self.table.iloc[index]
        start = int(round(row["start"] * SAMPLE_RATE))
        stop = int(round(row["end"] * SAMPLE_RATE))
        rng = np.random.default_rng([self.seed, epoch, index]) if self.random_crop else None
        start, stop = crop_bounds(start, stop, self.max_samples, rng)
        try:
            wav = read_audio(row["audio_path"], start, stop)
        except AudioError:
            if self.skip_bad_audio:
                return None
            raise
        labels = {t: torch.from_numpy(np.asarray(self.frame_targets[t](row, start, stop), dtype=np.float32))
                  if t in self.frame_targets else self.labels[t][index] for t in self.tasks}
        masks = {t: self.masks[t][index] for t in self.tasks}
        return wav, labels, masks


def crop_bounds(start: int, stop: int, max_samples: int, rng: np.random.Generator | None = None) -> tuple[int, int]:
    """Samples ``[start, stop)`` cut to at most ``max_samples``: a random window drawn from ``rng``, or the
    centred one when ``rng`` is None."""
    if stop - start <= max_samples:
        return start, stop
    slack = stop - start - max_samples
    start += int(rng.integers(0, slack + 1)) if rng is not None else slack // 2
    return start, start + max_samples


def collate(items):
    """Pad waveforms to the longest; returns dict(wavs (B, T), lengths (B,), labels {t: (B,)}, masks {t: (B,)},
    skipped: count of unreadable items dropped).

    All tasks' labels live in one (B, n_tasks) tensor and the masks in another (the per-task entries are
    views): every tensor a loader worker hands over costs a shared-memory transfer, and one per task per
    batch was measurable against a fast encoder's step.
    """
    kept = [it for it in items if it is not None]
    if not kept:
        return {"wavs": torch.zeros(0, 1), "lengths": torch.zeros(0, dtype=torch.long), "labels": {},
                "masks": {}, "skipped": len(items)}
    lengths = torch.tensor([len(w) for w, _, _ in kept])
    wavs = torch.zeros(len(kept), int(lengths.max()))
    for i, (w, _, _) in enumerate(kept):
        wavs[i, : len(w)] = w
    return {"wavs": wavs, "lengths": lengths, "labels": stack_by_task([it[1] for it in kept]),
            "masks": stack_by_task([it[2] for it in kept]), "skipped": len(items) - len(kept)}


def stack_by_task(rows: list[dict]) -> dict:
    """[{task: scalar tensor}] * B -> {task: (B,)}, views of one (B, n_tasks) tensor when the dtypes agree.

    Frame targets ((F_i, D) tensors) become (B, max F_i, D), zero-padded.
    """
    tasks = list(rows[0])
    frames = [t for t in tasks if rows[0][t].dim() > 0]
    if frames:
        scalars = [t for t in tasks if t not in frames]
        stacked = stack_by_task([{t: row[t] for t in scalars} for row in rows]) if scalars else {}
        return stacked | {t: pad_frames([row[t] for row in rows]) for t in frames}
    if len({rows[0][t].dtype for t in tasks}) != 1:  # e.g. a class index beside a continuous target
        return {t: torch.stack([row[t] for row in rows]) for t in tasks}
    table = torch.stack([torch.stack([row[t] for t in tasks]) for row in rows])
    return {t: table[:, i] for i, t in enumerate(tasks)}


def pad_frames(items: list[torch.Tensor]) -> torch.Tensor:
    """[(F_i, D)] * B -> (B, max F_i, D), zeros after each item's frames."""
    out = torch.zeros(len(items), max(len(x) for x in items), items[0].shape[1], dtype=items[0].dtype)
    for i, x in enumerate(items):
        out[i, : len(x)] = x
    return out
