"""``cnn``: a VGG-style 2-D CNN on log-mel spectrograms.

A spectrogram CNN of the kind that proxy-label pretraining for SER starts from (AV-SpNET [0] pretrains a CNN
speech front end on arousal/valence proxy labels derived from audio and text; [1] a speech encoder on
audiovisual pretext tasks); the configuration is this toolkit's, not either paper's: 128 mel bands from a
32 ms window every 16 ms, stages of 3x3 convolutions whose channels grow 32 -> 64 -> 128, each stage halving
time and frequency with a stride-2 convolution; frequency is averaged out at the end and a linear layer gives
``dim`` features every 128 ms.

[0] C.-C. Lu, J.-L. Li and C.-C. Lee, "Learning an arousal-valence speech front-end network using media data
    in-the-wild for emotion recognition" (AV-SpNET), AVEC 2018 (ACM), pp. 99-105.
[1] L. Goncalves and C. Busso, "Improving speech emotion recognition using self-supervised learning with
    domain-specific audiovisual tasks", Interspeech 2022.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
import torchaudio
from torch import nn

from .base import EncoderOutput, SpeechEncoder, conv_output_length, frame_mask

LOG_FLOOR = 1e-6  # added to mel power before the log: silence maps to log(1e-6)


@dataclass
class CNNConfig:
    n_mels: int = 128  # 128 mel bands, 32 ms window, 16 ms hop: the MSP-lab front end
    win_ms: float = 32.0
    hop_ms: float = 16.0
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])  # one stride-2 stage each
    dim: int = 128
    dropout: float = 0.1
    pooling: str = "mean"  # utterance embedding: mean | stats (mean + std) | attentive_stats (encoders.base)


class _Stage(nn.Module):
    """3x3 conv + BN + ReLU, then a stride-2 3x3 conv + BN + ReLU; padded time steps re-zeroed after each."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, C, n_mels, F)
        x = torch.relu(self.bn1(self.conv1(x))) * _time_mask(lengths, x)
        lengths = conv_output_length(lengths, 3, 2, 1)
        x = torch.relu(self.bn2(self.conv2(x)))
        return x * _time_mask(lengths, x), lengths


def _time_mask(lengths: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return frame_mask(lengths, x.shape[-1])[:, None, None, :].to(x.dtype)


class CNNEncoder(SpeechEncoder):
    name = "cnn"
    Config = CNNConfig

    def __init__(self, config: CNNConfig = CNNConfig()):
        super().__init__(config)
        self.win = int(round(config.win_ms * self.sample_rate / 1000))
        self.hop = int(round(config.hop_ms * self.sample_rate / 1000))
        # center=False: a frame only ever sees samples of its own utterance (padding-invariant).
        with warnings.catch_warnings():
            # 128 mel bands over the 257 bins of a 32 ms window leave a few of the lowest filters empty
            # (constant log-floor features): a property of the requested front end, not an error.
            warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
            self.mel = torchaudio.transforms.MelSpectrogram(self.sample_rate, n_fft=self.win, win_length=self.win,
                                                            hop_length=self.hop, n_mels=config.n_mels, center=False)
        # The analysis window is a fixed function of the config, not a weight; torchaudio stores it as a view
        # that safetensors (used by save_pretrained and Accelerate's checkpoints) refuses to serialise.
        spectrogram = self.mel.spectrogram
        window = spectrogram.window.clone()
        del spectrogram.window
        spectrogram.register_buffer("window", window, persistent=False)
        chans = [1, *config.channels]
        self.stages = nn.ModuleList(_Stage(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(chans[-1], config.dim)

    input_domain = "log_mel"

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        # wavs: (B, T); lengths: (B,) samples
        return self.encode_features(*self.input_features(wavs, lengths))

    def input_features(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, n_mels, F) log-mel spectrogram and (B,) frames. Frames past an item's end hold the log of
        silence (the floor), so a mix of two items (mixup) is as if the shorter one were followed by silence."""
        frames = torch.clamp(torch.div(lengths - self.win, self.hop, rounding_mode="floor") + 1, min=0)
        if wavs.shape[1] < self.win:
            wavs = nn.functional.pad(wavs, (0, self.win - wavs.shape[1]))
        # No per-utterance normalisation: loudness is what the energy task is about.
        x = torch.log(self.mel(wavs) + LOG_FLOOR).unsqueeze(1)
        return torch.where(_time_mask(frames, x) > 0, x, torch.full_like(x, math.log(LOG_FLOOR))), frames

    def encode_features(self, x: torch.Tensor, frames: torch.Tensor) -> EncoderOutput:
        """x: (B, 1, n_mels, F) log-mel, frames: (B,) -> frame features every 2^stages hops."""
        x, frames = self._stages(x, frames)[-1]
        x = x.mean(dim=2).transpose(1, 2)  # (B, F', C): frequency averaged out
        return self.output(self.proj(self.dropout(x)), frames)

    def _stages(self, x: torch.Tensor, frames: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each stage's (B, C, n_mels', F') output and (B,) frames, first to last."""
        x, outputs = x * _time_mask(frames, x), []
        for stage in self.stages:
            x, frames = stage(x, frames)
            outputs.append((x, frames))
        return outputs

    def hidden_states(self, wavs: torch.Tensor, lengths: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The log-mel front end (B, F, n_mels), then each convolution stage with frequency averaged out
        (B, F', C), as the encoder averages its last stage. The output projection is left out: a linear map of
        the last stage's frequency average, it adds nothing a linear readout of that stage lacks."""
        x, frames = self.input_features(wavs, lengths)
        states = [(x[:, 0].transpose(1, 2), frames)]
        return states + [(y.mean(dim=2).transpose(1, 2), n) for y, n in self._stages(x, frames)]
