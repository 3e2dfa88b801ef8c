"""Probe mode: the frozen encoder's pooled embeddings, computed once per (encoder weights, crop length) and
file and kept across the cells of an experiment; the head then trains on (B, D) embeddings."""
from __future__ import annotations

import hashlib
import json

import torch

from avpretext.common.batches import collate, SegmentDataset, stack_by_task
from avpretext.common.schedules import EpochSampler
from finetune.data import Targets
from finetune.model import SERModel


class EmbeddingDataset(torch.utils.data.Dataset):
    """Precomputed pooled embeddings + labels (probe mode); items like SegmentDataset's, batched by
    :func:`collate_embeddings`."""

    def __init__(self, embeddings: torch.Tensor, labels: dict, masks: dict):
        self.embeddings, self.labels, self.masks = embeddings, labels, masks

    def __len__(self):
        return len(self.embeddings)

    def __getitem__(self, key: int):
        i = int(key) % len(self.embeddings)  # EpochSampler keys carry the epoch
        return (self.embeddings[i], {t: v[i] for t, v in self.labels.items()},
                {t: v[i] for t, v in self.masks.items()})


def collate_embeddings(items):
    return {"embeddings": torch.stack([e for e, _, _ in items]), "labels": stack_by_task([it[1] for it in items]),
            "masks": stack_by_task([it[2] for it in items]), "skipped": 0}


@torch.no_grad()
def embed(accelerator, encoder, loader) -> torch.Tensor:
    """Pooled embeddings (N, D) of a loader's items, in order (probe mode computes them once)."""
    encoder.eval()
    pooled = [accelerator.gather_for_metrics(encoder(b["wavs"], b["lengths"]).pooled.float()).cpu() for b in loader]
    return torch.cat(pooled)


# Pooled embeddings by (encoder weights, crop length) and file: an experiment's probe cells that share an
# encoder (every fraction of a fold, or every seed of a pretrained encoder) embed each file once.
_EMBEDDINGS: dict[str, dict[str, torch.Tensor]] = {}
_EMBEDDINGS_KEPT = 4  # encoders whose embeddings stay cached (a few MB each)


def kept_cache(store: dict, key: str, kept: int) -> dict:
    """``store[key]`` (a new dict if absent), made the most recently used; the least recently used entries
    beyond ``kept`` are dropped. The per-encoder caches of a grid: a grid of per-fold encoders cycles through
    more encoders than one of a single pretrained encoder, and must not evict the one it is about to reuse."""
    cache = store.pop(key, {})
    store[key] = cache
    while len(store) > kept:
        store.pop(next(iter(store)))
    return cache


def encoder_key(encoder, max_seconds: float) -> str:
    digest = hashlib.sha1(f"{max_seconds}".encode())
    # The config too: two encoders with the same weights can pool differently (statistics pooling has none).
    digest.update(json.dumps(encoder.config_dict(), sort_keys=True, default=str).encode())
    for name, value in encoder.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _embed_table(config, accelerator, encoder, table, names: list[str]) -> torch.Tensor:
    """(N, D) pooled embeddings of a segment table's files (whole utterances up to eval_max_seconds)."""
    key = encoder_key(encoder, config.eval_max_seconds)
    cache = kept_cache(_EMBEDDINGS, key, _EMBEDDINGS_KEPT)
    missing = table[~table["audio_path"].isin(cache)].drop_duplicates("audio_path").reset_index(drop=True)
    if len(missing):
        # No random crops: the probe sees one fixed feature vector per file.
        dataset = SegmentDataset(missing, names, config.eval_max_seconds, False, config.seed, config.skip_bad_audio)
        loader = accelerator.prepare(torch.utils.data.DataLoader(dataset, batch_size=config.batch_size,
                                                                 collate_fn=collate, num_workers=0))
        for path, vector in zip(missing["audio_path"], embed(accelerator, encoder.to(accelerator.device), loader)):
            cache[path] = vector
    return torch.stack([cache[path] for path in table["audio_path"]])


def probe_loaders(config, accelerator, model: SERModel, tables: dict, targets: Targets):
    """Embed every split with the frozen encoder (cached); the head then trains on (B, D) embeddings."""
    sets, names = {}, targets.names
    for part, table in tables.items():
        labels = SegmentDataset(table, names)
        embeddings = _embed_table(config, accelerator, model.encoder, table, names)
        sets[part] = EmbeddingDataset(embeddings, labels.labels, labels.masks)
    model.head[0].fit(sets["train"].embeddings)
    sampler = EpochSampler(len(sets["train"]), config.seed)
    common = {"batch_size": config.batch_size, "collate_fn": collate_embeddings}
    train_loader = torch.utils.data.DataLoader(sets["train"], sampler=sampler, **common)
    eval_loaders = {part: torch.utils.data.DataLoader(sets[part], shuffle=False, **common) for part in ("dev", "test")}
    return train_loader, sampler, eval_loaders


