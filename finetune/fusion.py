"""Fusion (``--fuse egemaps``): the SER head reads the encoder's pooled embedding and the utterance's
standardised openSMILE functionals side by side.

The functionals (:mod:`finetune.opensmile_features`, computed once per file and cached) are standardised with
the training rows' statistics, which the model keeps (:class:`finetune.model.SERModel` ``fuse_norm``, saved
with the head in safetensors), so predict standardises new files the same way. Items carry them as
``batch["functionals"]`` (B, F): the loaders of fine-tuning and of the probe are wrapped here, unchanged
otherwise (same sampler, batch size, workers and collate).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from finetune.opensmile_features import FEATURE_SETS, Functionals


def fusion_settings(config) -> dict | None:
    """``{"features": name, "dim": F}`` for the model (None without ``--fuse``)."""
    if not config.fuse:
        return None
    return {"features": config.fuse, "dim": Functionals(config.fuse, cache=False).dim}


def check_fusion(config) -> None:
    """ValueError before any work for a fusion setting that cannot run."""
    if not config.fuse:
        return
    if config.fuse not in FEATURE_SETS:
        raise ValueError(f"--fuse {config.fuse}: unknown feature set; choose from {sorted(FEATURE_SETS)}")
    if config.mixup_alpha > 0:
        raise ValueError("--fuse with --mixup-alpha: mixup mixes the audio or embeddings, not the functionals; "
                         "use one of them")


class FusedDataset(torch.utils.data.Dataset):
    """A dataset's items paired with their row of ``features`` (N, F); keys may carry the epoch
    (``epoch * N + i``, :class:`avpretext.common.schedules.EpochSampler`)."""

    def __init__(self, dataset, features: torch.Tensor):
        self.dataset, self.features = dataset, features

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key: int):
        return self.dataset[key], self.features[int(key) % len(self.features)]


def collate_fused(collate, items):
    """``collate`` of the items plus ``functionals`` (B, F) of those it keeps (unreadable audio is None)."""
    kept = [(item, row) for item, row in items if item is not None]
    batch = collate([item for item, _ in kept] + [None] * (len(items) - len(kept)))
    batch["functionals"] = torch.stack([row for _, row in kept]) if kept else torch.zeros(0, len(items[0][1]))
    return batch


def _rewrap(loader, features: torch.Tensor):
    return torch.utils.data.DataLoader(
        FusedDataset(loader.dataset, features), batch_size=loader.batch_size, sampler=loader.sampler,
        collate_fn=functools.partial(collate_fused, loader.collate_fn), num_workers=loader.num_workers,
        drop_last=loader.drop_last, persistent_workers=loader.num_workers > 0 and loader.persistent_workers)


def fuse_loaders(config, model, tables: dict, train_loader, eval_loaders: dict,
                 functionals: Functionals | None = None):
    """Compute (cached) the functionals of every part's files, fit the model's ``fuse_norm`` on the training
    part's, and return (train loader, {part: eval loader}) whose batches carry them.

    ``tables``: {part: segment table} in the loaders' item order (one row per file, ``audio_path``)."""
    functionals = functionals or Functionals(config.fuse)
    features, readable = {}, None
    for part, table in tables.items():
        values, _ = functionals.compute(list(table["audio_path"]))
        if part == "train":
            readable = torch.from_numpy(~np.isnan(values).any(1))
        # An unreadable file's item is dropped by the loader (skip_bad_audio) or stops training: its row is
        # never read, and is 0 only to keep the tensor finite.
        features[part] = torch.from_numpy(np.nan_to_num(values))
    model.fuse_norm.fit(features["train"][readable])
    return (_rewrap(train_loader, features["train"]),
            {part: _rewrap(loader, features[part]) for part, loader in eval_loaders.items()})


@functools.lru_cache(maxsize=None)
def _extractor(name: str) -> Functionals:
    return Functionals(name, cache=False)


def add_functionals(batch: dict, wavs: list, models) -> dict:
    """``batch["functionals"]`` (B, F) of the items' waveforms (T,) when ``models`` are fused (predict: new
    files have no cache entry worth keeping); ``batch`` unchanged otherwise."""
    names = {model.fuse["features"] for model in models if model.fuse}
    if not names:
        return batch
    if len(names) > 1:
        raise ValueError(f"the models are fused with different functionals {sorted(names)}; predict with one set")
    extractor = _extractor(names.pop())
    batch["functionals"] = torch.from_numpy(np.stack([extractor.of_signal(np.asarray(w)) for w in wavs]))
    return batch
