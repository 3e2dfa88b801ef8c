"""``crnn``: raw-waveform CNN with parallel multi-scale convolutions feeding an LSTM.

After Latif et al. [0]: their first layer convolves the raw waveform with several kernel sizes in parallel, so
that the network sees the signal at several temporal resolutions, and an LSTM models what it extracts. Here
(short kernels resolve pitch periods, long ones the spectral envelope) the branches' outputs are concatenated,
refined by a further convolution, pooled, and a bidirectional LSTM models the sequence.

Each branch slides its kernel with its own stride, no larger than the kernel (by default half of it), so every
sample falls inside at least one window of every branch; a branch's rectified outputs are then averaged over
``hop / stride`` consecutive windows, which brings all branches to one frame every ``hop`` samples (10 ms)
with the frames of all branches centred on the same samples. Average pooling (rather than max) lets every
window of a frame pass its gradient on. Frame j of an utterance of L samples covers samples around
``[j * hop, (j + 1) * hop)``; an utterance has ``ceil(L / hop)`` frames (the last ones see the zeros past its
end, whether it is alone or padded in a batch), then ``// pool`` after the second stage (20 ms frames).

[0] S. Latif, R. Rana, S. Khalifa, R. Jurdak, J. Epps, "Direct Modelling of Speech Emotion from Raw
    Speech", Interspeech 2019.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .base import EncoderOutput, SpeechEncoder, frame_mask


@dataclass
class CRNNConfig:
    kernel_sizes: list[int] = field(default_factory=lambda: [40, 80, 160])  # 2.5, 5, 10 ms at 16 kHz
    # Each branch's stride, at most its kernel size (so no sample falls between two windows) and dividing hop.
    branch_strides: list[int] = field(default_factory=lambda: [20, 40, 80])
    hop: int = 160  # 10 ms: the common frame step every branch is average-pooled to
    channels_per_kernel: int = 32
    conv_channels: int = 128
    pool: int = 2  # second stage halves the frame rate (20 ms frames)
    lstm_hidden: int = 64  # per direction
    dim: int = 128
    pooling: str = "mean"  # utterance embedding: mean | stats (mean + std) | attentive_stats (encoders.base)


def check_crnn_config(config: CRNNConfig) -> None:
    """ValueError naming the option when the branches could skip samples or not meet on one frame rate."""
    if len(config.branch_strides) != len(config.kernel_sizes):
        raise ValueError(f"branch_strides {config.branch_strides}: one per kernel size {config.kernel_sizes}")
    for kernel, stride in zip(config.kernel_sizes, config.branch_strides):
        if not 0 < stride <= kernel:
            raise ValueError(f"branch_strides: {stride} for the {kernel}-sample kernel; a stride must be in "
                             f"[1, kernel size], or samples between two windows are never seen")
        if config.hop % stride:
            raise ValueError(f"branch_strides: {stride} does not divide hop {config.hop} (each branch is "
                             "average-pooled to one frame every hop samples)")


class CRNNEncoder(SpeechEncoder):
    name = "crnn"
    Config = CRNNConfig
    # A saved config with one of these options belongs to another front end, whose weights do not fit this one.
    RETIRED_OPTIONS = {"stride": "a crnn encoder saved with the option 'stride' has the single-stride front end "
                                 "(every branch stepping 160 samples, so the short kernels skipped samples), whose "
                                 "weights do not fit the per-branch-stride front end; retrain or re-pretrain it"}

    def __init__(self, config: CRNNConfig = CRNNConfig()):
        super().__init__(config)
        check_crnn_config(config)
        self.branches = nn.ModuleList(
            nn.Conv1d(1, config.channels_per_kernel, k, stride=s)
            for k, s in zip(config.kernel_sizes, config.branch_strides))
        width = config.channels_per_kernel * len(config.kernel_sizes)
        # Normalised per frame over channels: a norm over time would mix in the padding.
        self.norm = nn.LayerNorm(width)
        self.conv = nn.Conv1d(width, config.conv_channels, 3, padding=1)
        self.pool = nn.MaxPool1d(config.pool)
        self.lstm = nn.LSTM(config.conv_channels, config.lstm_hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * config.lstm_hidden, config.dim)

    def frame_count(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) samples -> (B,) front-end frames: ceil(L / hop)."""
        return torch.div(lengths + self.config.hop - 1, self.config.hop, rounding_mode="floor")

    def front_end(self, wavs: torch.Tensor, frames: int) -> list[torch.Tensor]:
        """Each branch's rectified, pooled output, (B, channels_per_kernel, frames) per branch.

        Branch (kernel k, stride s) spans ``hop - s + k`` samples per frame; the waveform is zero-padded by
        ``(k - s) // 2`` on the left (so the spans of all branches are centred alike) and on the right up to
        what ``frames`` frames need.
        """
        hop, outputs = self.config.hop, []
        x = wavs.unsqueeze(1)  # (B, 1, T)
        for branch, kernel, stride in zip(self.branches, self.config.kernel_sizes, self.config.branch_strides):
            left = (kernel - stride) // 2
            needed = (frames - 1) * hop + hop - stride + kernel  # padded samples that give frames x hop/s windows
            padded = nn.functional.pad(x, (left, max(0, needed - left - x.shape[-1])))[..., :needed]
            windows = torch.relu(branch(padded))  # (B, C, frames * hop / s)
            outputs.append(nn.functional.avg_pool1d(windows, hop // stride))
        return outputs

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        # wavs: (B, T); lengths: (B,) samples
        frames = self.frame_count(lengths)
        width = max(self.config.pool, int(self.frame_count(torch.tensor(wavs.shape[1]))))
        x = torch.cat(self.front_end(wavs, width), dim=1)  # (B, C, F)
        mask = frame_mask(frames, x.shape[-1])[:, None, :].to(x.dtype)
        x = torch.relu(self.norm(x.transpose(1, 2)).transpose(1, 2)) * mask
        x = torch.relu(self.conv(x)) * mask
        x = self.pool(x)
        frames = torch.div(frames, self.config.pool, rounding_mode="floor")
        x = x.transpose(1, 2)  # (B, F', C)
        packed = nn.utils.rnn.pack_padded_sequence(x, frames.clamp(min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        y, _ = self.lstm(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.output(self.proj(y), frames)
