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


@dataclass
class EncoderOutput:
    """frames: (B, F, D) features; lengths: (B,) valid frames per item; pooled: (B, D) masked mean."""

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

    @property
    def output_dim(self) -> int:
        return self.config.dim

    def config_dict(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self.config)}

    def input_features(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The front end's output (B, ..., F) and its valid lengths (B,) in its own frames, padding holding
        silence. A waveform encoder's front end is the waveform itself."""
        return wavs, lengths

    def encode_features(self, features: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """The rest of the encoder, from :meth:`input_features`' output (or a mix of such outputs)."""
        return self(features, lengths)

    def output(self, frames: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        frames = frames * frame_mask(lengths, frames.shape[1]).unsqueeze(-1).to(frames.dtype)
        return EncoderOutput(frames, lengths, masked_mean(frames, lengths))
