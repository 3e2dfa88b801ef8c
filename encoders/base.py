"""The speech-encoder contract: raw 16 kHz waveform + lengths in, frame features + lengths + pooled out.

Every encoder carries its own front end and keeps padding from changing any result: features of padded
positions are zeroed after every layer that mixes neighbouring frames, so an utterance padded inside a batch
sees exactly what it would see alone (zeros beyond its end).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

SAMPLE_RATE = 16000


POOLINGS = ("mean", "stats", "attentive_stats")


@dataclass
class EncoderOutput:
    """frames: (B, F, D) features; lengths: (B,) valid frames per item; pooled: (B, P) utterance embedding of
    the encoder's ``pooling`` (P = D for the mean, 2 D for statistics pooling)."""

    frames: torch.Tensor
    lengths: torch.Tensor
    pooled: torch.Tensor


def frame_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over valid frames. frames: (B, F, D), lengths: (B,) -> (B, D); an empty item gives zeros."""
    mask = frame_mask(lengths, frames.shape[1]).unsqueeze(-1).to(frames.dtype)
    return (frames * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def masked_mean_std(frames: torch.Tensor, lengths: torch.Tensor, weights: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """Mean and standard deviation over valid frames, concatenated: (B, F, D), (B,) -> (B, 2 D).

    ``weights`` (B, F), summing to 1 over each item's valid frames (attention), weight the statistics; None
    weighs valid frames equally. An empty item gives zeros.
    """
    mask = frame_mask(lengths, frames.shape[1]).to(frames.dtype)
    if weights is None:
        weights = mask / mask.sum(1, keepdim=True).clamp(min=1.0)
    weights = (weights * mask).unsqueeze(-1)
    mean = (frames * weights).sum(1)
    variance = (frames.pow(2) * weights).sum(1) - mean.pow(2)
    # The floor keeps the gradient of sqrt finite for constant features (and empty items).
    return torch.cat([mean, variance.clamp(min=1e-6).sqrt() * (lengths > 0).to(frames.dtype)[:, None]], dim=-1)


class StatisticsPooling(nn.Module):
    """x-vector statistics pooling (Snyder et al. 2018): mean and standard deviation over frames. With
    ``attentive``, attentive statistics pooling (Okabe et al., Interspeech 2018): a small network scores each
    frame, and the mean and standard deviation are weighted by the softmax of the scores over the item's frames.
    """

    def __init__(self, dim: int, attentive: bool = False, hidden: int = 64):
        super().__init__()
        self.attention = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1)) if attentive else None

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, F, D), (B,) -> (B, 2 D); padding never receives weight."""
        if self.attention is None:
            return masked_mean_std(frames, lengths)
        mask = frame_mask(lengths, frames.shape[1])
        scores = self.attention(frames).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).nan_to_num(0.0)  # an empty item: all -inf, no weight
        return masked_mean_std(frames, lengths, weights)


def conv_output_length(lengths: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """Output length of a 1-D convolution (or pooling) along time, as PyTorch computes it."""
    return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1


class SpeechEncoder(nn.Module):
    """Base class. Subclasses set ``name`` and ``Config`` (a dataclass) and implement ``forward``.

    ``forward(wavs (B, T) float32 in [-1, 1], lengths (B,) samples) -> EncoderOutput``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    sample_rate: ClassVar[int] = SAMPLE_RATE
    # What the encoder's own front end turns the waveform into, for methods that work there (mixup on log-mel
    # inputs): "waveform" (no separate front end) or "log_mel". ``forward`` is always
    # ``encode_features(*input_features(wavs, lengths))``.
    input_domain: ClassVar[str] = "waveform"

    def __init__(self, config):
        super().__init__()
        self.config = config
        # The utterance embedding: the mean over frames (configs without a pooling field, i.e. encoders saved
        # before it existed, too), or statistics pooling, plain or attentive (its weights are the encoder's).
        pooling = getattr(config, "pooling", "mean")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r}: choose from {', '.join(POOLINGS)}")
        self.pooling = None if pooling == "mean" else StatisticsPooling(config.dim, pooling == "attentive_stats")

    @property
    def frame_dim(self) -> int:
        """Width D of the frame features."""
        return self.config.dim

    @property
    def output_dim(self) -> int:
        """Width of the pooled embedding: D, or 2 D with statistics pooling."""
        return self.config.dim * (1 if self.pooling is None else 2)

    def config_dict(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self.config)}

    def input_features(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The front end's output (B, ..., F) and its valid lengths (B,) in its own frames, padding holding
        silence. A waveform encoder's front end is the waveform itself."""
        return wavs, lengths

    def encode_features(self, features: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """The rest of the encoder, from :meth:`input_features`' output (or a mix of such outputs)."""
        return self(features, lengths)

    def hidden_states(self, wavs: torch.Tensor, lengths: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's output as (frames (B, F_l, D_l), lengths (B,)) pairs, input side first (s3prl's
        ``hidden_states``), for readouts that use more than the last layer. Encoders without their own
        override give their output frames only."""
        out = self(wavs, lengths)
        return [(out.frames, out.lengths)]

    def output(self, frames: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        frames = frames * frame_mask(lengths, frames.shape[1]).unsqueeze(-1).to(frames.dtype)
        pooled = masked_mean(frames, lengths) if self.pooling is None else self.pooling(frames, lengths)
        return EncoderOutput(frames, lengths, pooled)
