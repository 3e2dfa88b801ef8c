"""Segment batches: split by media, seeded epochs, padding and lengths."""
from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from avpretext.common.batches import collate, SegmentDataset, split_by_media
from avpretext.common.schedules import EpochSampler


def test_validation_split_takes_whole_media_items():
    table = pd.DataFrame({"media_id": [f"m{i // 3}" for i in range(60)], "segment_id": range(60)})
    train, val = split_by_media(table, 0.2, seed=0)
    assert len(train) + len(val) == 60 and len(val) > 0
    assert not set(train.media_id) & set(val.media_id)
    assert split_by_media(table, 0.2, seed=0)[1].equals(val)  # deterministic


def test_epoch_sampler_is_seeded_and_carries_the_epoch():
    sampler = EpochSampler(10, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(10)) and list(sampler) == first
    sampler.set_epoch(2)
    second = list(sampler)
    assert sorted(second) == list(range(20, 30)) and [k % 10 for k in second] != first


def test_dataset_crops_reads_and_pads(tmp_path):
    wav = np.linspace(-0.5, 0.5, 16000 * 5, dtype=np.float32)
    sf.write(tmp_path / "a.flac", wav, 16000)
    table = pd.DataFrame({"audio_path": [str(tmp_path / "a.flac")] * 2, "start": [0.0, 1.0], "end": [4.0, 2.0],
                          "energy_label": [1, -1], "energy_mask": [True, False]})
    data = SegmentDataset(table, ["energy"], max_seconds=3.0, random_crop=True, seed=0)
    batch = collate([data[0], data[1]])
    assert batch["wavs"].shape == (2, 48000) and batch["lengths"].tolist() == [48000, 16000]
    assert batch["labels"]["energy"].tolist() == [1, -1] and batch["masks"]["energy"].tolist() == [True, False]
    assert torch.all(batch["wavs"][1, 16000:] == 0)
    # Crops differ between epochs (key = epoch * len + index) but are fixed for a given epoch.
    assert torch.equal(data[0][0], data[0][0]) and not torch.equal(data[0][0], data[2][0])
