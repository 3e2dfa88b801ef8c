"""Chunk-level modelling of variable-length utterances: each utterance is split into chunks of S seconds, every
chunk is encoded on its own, and the chunk embeddings are aggregated into one utterance embedding for the head.

Two ways of chunking (``--chunk-mode``):

``dynamic`` (the default; Lin and Busso [0, 1]): every utterance, whatever its length L, becomes exactly C
chunks of S seconds, the first starting at the utterance's start and the last ending at its end, with the
overlap between neighbours adapted to the length::

    overlap = (C * S - L) / (C - 1)        hop = S - overlap = (L - S) / (C - 1)

so nothing is cropped and nothing is padded, and a batch of B utterances is B x C chunks (training reads whole
utterances: :func:`finetune.data.read_seconds`). The papers choose C = ceil(Tmax / S) for a corpus's longest
sentence Tmax (C = 11 with S = 1 s on MSP-Podcast, whose sentences last 2.75-11 s), so the overlap is never
negative there. Here C is an option (default 11): an utterance longer than C x S gets a negative overlap, that is
C chunks spread evenly from its start to its end with gaps between them, still C chunks. Utterances shorter than
one chunk do not occur in the papers' corpora and the authors' code refuses them; here each of the C chunks of
such an utterance is the whole utterance (start 0, valid length L; the samples after L in the (C, S) chunk
tensor are zeros that the encoder masks by the length), so it is still C chunks and nothing is invented.

``sliding``: chunks of S seconds with a fixed overlap (``--chunk-overlap``, a fraction of a chunk), so the
number of chunks grows with the length (``1 + ceil((L - S) / hop)``, the last chunk aligned to the end); it runs
after the training crop. This is not the papers' method; it is selectable for comparison, and it is how a model
folder whose chunking records no ``mode`` is read.

Aggregation (``--chunk-pooling``) over an utterance's chunk embeddings, after the papers' variants [1]:
``mean`` (their NonAtten), ``attention`` (a softmax of a learned score ``w . tanh(V e)``), ``gated`` (their
GatedVec: each chunk scaled by a learned sigmoid gate, then averaged), ``gru`` (a recurrent layer over the
chunk sequence read as their RnnAttenVec: a GRU over the C chunks, attention scores ``h_t . W h_C`` against the
last state, ``tanh(W' [context; h_C])``; the papers use a plain RNN cell there, a GRU is used here for its
steadier gradients). ``gru`` needs the dynamic mode (a fixed number of chunks in order).

Training, evaluation and ``finetune/predict.py`` all go through :meth:`finetune.model.SERModel.embed`, so
prediction chunks exactly like training did (the settings are saved in the model folder).

[0] W.-C. Lin and C. Busso, "An efficient temporal modeling approach for speech emotion recognition by mapping
    varied duration sentences into fixed number of chunks", Interspeech 2020.
[1] W.-C. Lin and C. Busso, "Chunk-level speech emotion recognition: a general framework of sequence-to-one
    dynamic temporal modeling", IEEE Transactions on Affective Computing 14(2), 2023 (online 2021).
"""
from __future__ import annotations

import math

import torch
from torch import nn

CHUNK_MODES = ("dynamic", "sliding")
POOLINGS = ("mean", "attention", "gated", "gru")
SAMPLE_RATE = 16000


def check_chunking(config) -> None:
    """ValueError naming the option when the chunk settings cannot work."""
    if config.chunk_seconds < 0:
        raise ValueError(f"--chunk-seconds {config.chunk_seconds}: must be >= 0 (0: off)")
    if config.chunk_mode not in CHUNK_MODES:
        raise ValueError(f"--chunk-mode {config.chunk_mode!r}: choose from {', '.join(CHUNK_MODES)}")
    if config.chunk_count < 2:
        raise ValueError(f"--chunk-count {config.chunk_count}: must be >= 2 (the first chunk starts at the "
                         "utterance's start, the last ends at its end)")
    if not 0 <= config.chunk_overlap < 1:
        raise ValueError(f"--chunk-overlap {config.chunk_overlap}: must be in [0, 1) (a fraction of a chunk)")
    if config.chunk_pooling not in POOLINGS:
        raise ValueError(f"--chunk-pooling {config.chunk_pooling!r}: choose from {', '.join(POOLINGS)}")
    if config.chunk_pooling == "gru" and config.chunk_mode != "dynamic":
        raise ValueError("--chunk-pooling gru needs --chunk-mode dynamic (a fixed number of chunks in order)")
    if config.chunk_seconds and config.mode != "finetune":
        raise ValueError("--chunk-seconds needs --mode finetune (the probe caches one embedding per utterance)")


def chunk_settings(config) -> dict | None:
    """The model's chunking (saved with it), or None when off."""
    if not config.chunk_seconds:
        return None
    if config.chunk_mode == "sliding":
        return {"mode": "sliding", "seconds": config.chunk_seconds, "overlap": config.chunk_overlap,
                "pooling": config.chunk_pooling}
    return {"mode": "dynamic", "seconds": config.chunk_seconds, "count": config.chunk_count,
            "pooling": config.chunk_pooling}


def settings_mode(settings: dict) -> str:
    """A saved chunking's mode; model folders written before the dynamic mode existed chunked by sliding."""
    return settings.get("mode", "sliding")


def dynamic_starts(lengths: torch.Tensor, chunk: int, count: int) -> torch.Tensor:
    """(B, count) start samples: ``round(k * (L - chunk) / (count - 1))``, k = 0 .. count - 1, so the first
    chunk starts at 0 and the last ends at L; all 0 for an utterance shorter than a chunk."""
    span = (lengths - chunk).clamp(min=0).to(torch.float64)
    steps = torch.arange(count, device=lengths.device, dtype=torch.float64)
    return torch.round(span[:, None] * steps / (count - 1)).long()


def dynamic_chunks(wavs: torch.Tensor, lengths: torch.Tensor, chunk: int, count: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split each utterance of a padded batch into exactly ``count`` chunks (the dynamic mode).

    Args:
        wavs: (B, T) zero-padded waveforms; lengths: (B,) valid samples.
        chunk: samples per chunk (S); count: chunks per utterance (C).

    Returns:
        chunks (B * C, chunk) in utterance order, their valid lengths (B * C,) (``min(chunk, L)``), and owner
        (B * C,): the utterance index of each chunk. Samples past a shorter utterance's end are zeros.
    """
    if wavs.shape[1] < chunk:
        wavs = nn.functional.pad(wavs, (0, chunk - wavs.shape[1]))
    starts = dynamic_starts(lengths, chunk, count)  # (B, C)
    index = starts[:, :, None] + torch.arange(chunk, device=wavs.device)  # (B, C, S)
    rows = torch.arange(len(lengths), device=wavs.device)[:, None, None]
    chunks = wavs[rows, index]
    sizes = lengths.clamp(max=chunk)
    chunks = chunks * (torch.arange(chunk, device=wavs.device) < sizes[:, None, None]).to(chunks.dtype)
    owner = torch.arange(len(lengths), device=lengths.device).repeat_interleave(count)
    return chunks.reshape(-1, chunk), sizes.repeat_interleave(count), owner


def sliding_chunks(wavs: torch.Tensor, lengths: torch.Tensor, chunk: int, hop: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split each utterance of a padded batch into chunks with a fixed hop (the sliding mode).

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


class _RecurrentAttention(nn.Module):
    """(B, C, D) chunk sequence -> (B, D): a GRU, attention against its last state, ``tanh(W [context; h_C])``."""

    def __init__(self, dim: int):
        super().__init__()
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.score = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(sequence)  # (B, C, D)
        last = states[:, -1]  # (B, D)
        weights = torch.softmax(torch.einsum("bcd,bd->bc", self.score(states), last), dim=1)
        context = torch.einsum("bc,bcd->bd", weights, states)
        return torch.tanh(self.out(torch.cat([context, last], dim=1)))


class ChunkPooling(nn.Module):
    """Chunk embeddings (N, D) + owner (N,) -> utterance embeddings (B, D).

    ``mean``: the average of an utterance's chunks. ``attention``: weights ``softmax(w . tanh(V e))`` over an
    utterance's chunks. ``gated``: ``mean(sigmoid(w . e + b) * e)``. ``gru``: :class:`_RecurrentAttention` over
    the chunks in order, which needs ``count`` chunks per utterance, consecutive (the dynamic mode's layout).
    """

    def __init__(self, dim: int, pooling: str = "mean", hidden: int = 64):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown chunk pooling {pooling!r}; choose from {POOLINGS}")
        self.pooling = pooling
        self.score = (nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
                      if pooling == "attention" else None)
        self.gate = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid()) if pooling == "gated" else None
        self.recurrent = _RecurrentAttention(dim) if pooling == "gru" else None

    def forward(self, embeddings: torch.Tensor, owner: torch.Tensor, batch_size: int) -> torch.Tensor:
        if self.recurrent is not None:
            return self.recurrent(embeddings.reshape(batch_size, -1, embeddings.shape[1]))
        if self.gate is not None:
            embeddings = self.gate(embeddings) * embeddings
        if self.score is None:
            scores = torch.zeros(len(owner), device=embeddings.device, dtype=embeddings.dtype)
        else:
            scores = self.score(embeddings).squeeze(-1)
        # A softmax within each utterance's chunks (max subtracted per utterance for stability); equal scores
        # make it the mean.
        top = torch.full((batch_size,), -math.inf, device=scores.device, dtype=scores.dtype)
        top = top.scatter_reduce(0, owner, scores.detach(), reduce="amax")
        weights = torch.exp(scores - top[owner])
        totals = torch.zeros(batch_size, device=scores.device, dtype=scores.dtype).index_add(0, owner, weights)
        weights = weights / totals[owner]
        pooled = torch.zeros(batch_size, embeddings.shape[1], device=embeddings.device, dtype=embeddings.dtype)
        return pooled.index_add(0, owner, weights.unsqueeze(-1) * embeddings)


def split_chunks(settings: dict, wavs: torch.Tensor, lengths: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chunks of a padded batch as a saved chunking (:func:`chunk_settings`) makes them."""
    chunk = int(round(settings["seconds"] * SAMPLE_RATE))
    if settings_mode(settings) == "dynamic":
        return dynamic_chunks(wavs, lengths, chunk, int(settings["count"]))
    hop = max(1, int(round(chunk * (1 - settings["overlap"]))))
    return sliding_chunks(wavs, lengths, chunk, hop)


def embed_chunked(encoder, pooling: ChunkPooling, settings: dict, wavs: torch.Tensor, lengths: torch.Tensor
                  ) -> torch.Tensor:
    """(B, D) utterance embeddings of a padded batch, encoded chunk by chunk and aggregated."""
    chunks, sizes, owner = split_chunks(settings, wavs, lengths)
    return pooling(encoder(chunks, sizes).pooled, owner, len(lengths))
