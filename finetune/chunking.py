"""Dynamic chunking of variable-length utterances (Lin and Busso): each utterance is split into a variable
number of fixed-length, overlapping chunks, every chunk is encoded on its own, and the chunk embeddings are
pooled (mean, or a learned attention) into one utterance embedding for the head.

An utterance of L samples with chunks of C samples and a hop of H = C x (1 - overlap) gives
``1 + ceil((L - C) / H)`` chunks; the last one is aligned to the utterance's end, so nothing is left out and
no chunk is padding. An utterance no longer than one chunk is one (shorter) chunk. Training crops, evaluation
and ``finetune/predict.py`` all go through :meth:`finetune.model.SERModel.embed`, so prediction chunks exactly
like training did (the chunk settings are saved in the model folder).
"""
from __future__ import annotations

import math

import torch
from torch import nn

POOLINGS = ("mean", "attention")
SAMPLE_RATE = 16000


def check_chunking(config) -> None:
    """ValueError naming the option when the chunk settings cannot work."""
    if config.chunk_seconds < 0:
        raise ValueError(f"--chunk-seconds {config.chunk_seconds}: must be >= 0 (0: off)")
    if not 0 <= config.chunk_overlap < 1:
        raise ValueError(f"--chunk-overlap {config.chunk_overlap}: must be in [0, 1) (a fraction of a chunk)")
    if config.chunk_pooling not in POOLINGS:
        raise ValueError(f"--chunk-pooling {config.chunk_pooling!r}: choose from {', '.join(POOLINGS)}")
    if config.chunk_seconds and config.mode != "finetune":
        raise ValueError("--chunk-seconds needs --mode finetune (the probe caches one embedding per utterance)")


def chunk_settings(config) -> dict | None:
    """The model's chunking (saved with it), or None when off."""
    if not config.chunk_seconds:
        return None
    return {"seconds": config.chunk_seconds, "overlap": config.chunk_overlap, "pooling": config.chunk_pooling}


def chunk_batch(wavs: torch.Tensor, lengths: torch.Tensor, chunk: int, hop: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split each utterance of a padded batch into chunks.

    Args:
        wavs: (B, T) zero-padded waveforms; lengths: (B,) valid samples.
        chunk: samples per chunk; hop: samples between chunk starts (<= chunk).

    Returns:
        chunks (N, min(chunk, T)), their lengths (N,), and owner (N,): the utterance index of each chunk.
    """
    width = min(chunk, wavs.shape[1])
    pieces, sizes, owners = [], [], []
    for i, length in enumerate(lengths.tolist()):
        if length <= chunk:
            starts = [0]
        else:
            count = 1 + math.ceil((length - chunk) / hop)
            starts = [k * hop for k in range(count - 1)] + [length - chunk]
        for start in starts:
            pieces.append(wavs[i, start:start + width])
            sizes.append(min(chunk, length))
            owners.append(i)
    return (torch.stack(pieces), torch.tensor(sizes, device=lengths.device),
            torch.tensor(owners, device=lengths.device))


class ChunkPooling(nn.Module):
    """Chunk embeddings (N, D) + owner (N,) -> utterance embeddings (B, D).

    ``mean``: the average of an utterance's chunks. ``attention``: weights ``softmax(w . tanh(V e))`` over an
    utterance's chunks (the attentive pooling common in SER), learned with the rest of the model.
    """

    def __init__(self, dim: int, pooling: str = "mean", hidden: int = 64):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown chunk pooling {pooling!r}; choose from {POOLINGS}")
        self.pooling = pooling
        self.score = (nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
                      if pooling == "attention" else None)

    def forward(self, embeddings: torch.Tensor, owner: torch.Tensor, batch_size: int) -> torch.Tensor:
        if self.score is None:
            scores = torch.zeros(len(owner), device=embeddings.device, dtype=embeddings.dtype)
        else:
            scores = self.score(embeddings).squeeze(-1)
        # A softmax within each utterance's chunks (max subtracted per utterance for stability).
        top = torch.full((batch_size,), -math.inf, device=scores.device, dtype=scores.dtype)
        top = top.scatter_reduce(0, owner, scores.detach(), reduce="amax")
        weights = torch.exp(scores - top[owner])
        totals = torch.zeros(batch_size, device=scores.device, dtype=scores.dtype).index_add(0, owner, weights)
        weights = weights / totals[owner]
        pooled = torch.zeros(batch_size, embeddings.shape[1], device=embeddings.device, dtype=embeddings.dtype)
        return pooled.index_add(0, owner, weights.unsqueeze(-1) * embeddings)


def embed_chunked(encoder, pooling: ChunkPooling, settings: dict, wavs: torch.Tensor, lengths: torch.Tensor
                  ) -> torch.Tensor:
    """(B, D) utterance embeddings of a padded batch, encoded chunk by chunk and pooled."""
    chunk = int(round(settings["seconds"] * SAMPLE_RATE))
    hop = max(1, int(round(chunk * (1 - settings["overlap"]))))
    chunks, sizes, owner = chunk_batch(wavs, lengths, chunk, hop)
    return pooling(encoder(chunks, sizes).pooled, owner, len(lengths))
