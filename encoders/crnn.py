"""``crnn``: raw-waveform CNN with parallel multi-scale convolutions feeding an LSTM.

After Latif et al. [0]: the first layer convolves the raw waveform with several kernel sizes in parallel
(short kernels see pitch periods, long ones the spectral envelope), their outputs are concatenated, pooled
and refined by further convolutions, and a (bidirectional) LSTM models the sequence. Frames come every
10 ms x pool.

[0] S. Latif, R. Rana, S. Khalifa, R. Jurdak, J. Epps, "Direct Modelling of Speech Emotion from Raw
    Speech", Interspeech 2019.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .base import EncoderOutput, SpeechEncoder, conv_output_length, frame_mask


@dataclass
class CRNNConfig:
    kernel_sizes: list[int] = field(default_factory=lambda: [40, 80, 160])  # 2.5, 5, 10 ms at 16 kHz
    stride: int = 160  # 10 ms: one first-layer frame per analysis hop
    channels_per_kernel: int = 32
    conv_channels: int = 128
    pool: int = 2  # second stage halves the frame rate (20 ms frames)
    lstm_hidden: int = 64  # per direction
    dim: int = 128


class CRNNEncoder(SpeechEncoder):
    name = "crnn"
    Config = CRNNConfig

    def __init__(self, config: CRNNConfig = CRNNConfig()):
        super().__init__(config)
        k_max = max(config.kernel_sizes)
        # Every branch uses the longest kernel's window (shorter kernels centred in it) so that all branches
        # produce frames at the same times and counts.
        self.window = k_max
        self.branches = nn.ModuleList(
            nn.Conv1d(1, config.channels_per_kernel, k, stride=config.stride, padding=0) for k in config.kernel_sizes)
        width = config.channels_per_kernel * len(config.kernel_sizes)
        # Normalised per frame over channels: a norm over time would mix in the padding.
        self.norm = nn.LayerNorm(width)
        self.conv = nn.Conv1d(width, config.conv_channels, 3, padding=1)
        self.pool = nn.MaxPool1d(config.pool)
        self.lstm = nn.LSTM(config.conv_channels, config.lstm_hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * config.lstm_hidden, config.dim)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        # wavs: (B, T); lengths: (B,) samples
        cfg = self.config
        if wavs.shape[1] < self.window:
            wavs = nn.functional.pad(wavs, (0, self.window - wavs.shape[1]))
        x = wavs.unsqueeze(1)  # (B, 1, T)
        frames = torch.clamp(conv_output_length(lengths, self.window, cfg.stride, 0), min=0)
        n_out = (x.shape[-1] - self.window) // cfg.stride + 1
        outs = [branch(x[:, :, (self.window - k) // 2:])[:, :, :n_out]
                for k, branch in zip(cfg.kernel_sizes, self.branches)]
        x = torch.cat(outs, dim=1)  # (B, C, F)
        mask = frame_mask(frames, x.shape[-1])[:, None, :].to(x.dtype)
        x = torch.relu(self.norm(x.transpose(1, 2)).transpose(1, 2)) * mask
        x = torch.relu(self.conv(x)) * mask
        x = self.pool(x)
        frames = torch.div(frames, cfg.pool, rounding_mode="floor")
        x = x.transpose(1, 2)  # (B, F', C)
        packed = nn.utils.rnn.pack_padded_sequence(x, frames.clamp(min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        y, _ = self.lstm(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.output(self.proj(y), frames)
