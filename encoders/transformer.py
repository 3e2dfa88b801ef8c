"""``transformer``: a wav2vec2/HuBERT-style model built from ``torchaudio.models`` [0, 1].

A convolutional feature extractor on the raw waveform (20 ms frames) followed by a Transformer encoder with
a convolutional positional embedding. The default is a small configuration trained from scratch; a user who
already has a compatible checkpoint file on disk can initialise from it (``init_checkpoint``, a safetensors
file of a torchaudio ``Wav2Vec2Model`` state dict): nothing is unpickled and nothing is ever downloaded. A
missing, pickled (``torch.save``), corrupt or mismatching file is refused by :class:`encoders.io.LoadError`
naming it, when the encoder is built (before a run writes anything).

The extractor uses per-frame layer norm (``extractor_mode="layer_norm"``): wav2vec2-base's group norm over
time would mix padding into every frame, so a padded batch would not match its items run one by one.

[0] A. Baevski et al., "wav2vec 2.0", NeurIPS 2020.  [1] W.-N. Hsu et al., "HuBERT", TASLP 2021.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torchaudio.models import wav2vec2_model

from .base import EncoderOutput, SpeechEncoder
from .io import LoadError, read_safetensors


@dataclass
class TransformerConfig:
    # (channels, kernel, stride) of the waveform convolutions: wav2vec2's stack, 20 ms frames, narrower.
    conv_layers: list[list[int]] = field(default_factory=lambda: [[128, 10, 5]] + [[128, 3, 2]] * 4 + [[128, 2, 2]] * 2)
    dim: int = 192
    num_layers: int = 4
    num_heads: int = 4
    ff_dim: int = 768
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    dropout: float = 0.1
    layer_drop: float = 0.0  # 0: every layer always runs (layer drop would differ between ranks)
    # A safetensors file of a compatible torchaudio Wav2Vec2Model state dict (pickled .pt files are refused).
    init_checkpoint: str | None = None
    pooling: str = "mean"  # utterance embedding: mean | stats (mean + std) | attentive_stats (encoders.base)


class TransformerEncoder(SpeechEncoder):
    name = "transformer"
    Config = TransformerConfig

    def __init__(self, config: TransformerConfig = TransformerConfig()):
        super().__init__(config)
        self.model = wav2vec2_model(
            extractor_mode="layer_norm", extractor_conv_layer_config=[tuple(c) for c in config.conv_layers],
            extractor_conv_bias=True, encoder_embed_dim=config.dim, encoder_projection_dropout=config.dropout,
            encoder_pos_conv_kernel=config.pos_conv_kernel, encoder_pos_conv_groups=config.pos_conv_groups,
            encoder_num_layers=config.num_layers, encoder_num_heads=config.num_heads,
            encoder_attention_dropout=config.dropout, encoder_ff_interm_features=config.ff_dim,
            encoder_ff_interm_dropout=config.dropout, encoder_dropout=config.dropout,
            encoder_layer_norm_first=True, encoder_layer_drop=config.layer_drop, aux_num_out=None)
        if config.init_checkpoint:
            self.model.load_state_dict(read_init_checkpoint(config.init_checkpoint, self.model.state_dict()))
        self.min_samples = _receptive_field(config.conv_layers)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        # wavs: (B, T); lengths: (B,) samples
        features, frames = self._layers(wavs, lengths)
        return self.output(features[-1], frames)  # (B, F, dim): last Transformer layer

    def _layers(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each Transformer layer's (B, F, dim) output and the (B,) valid frames."""
        if wavs.shape[1] < self.min_samples:
            wavs = nn.functional.pad(wavs, (0, self.min_samples - wavs.shape[1]))
        features, frames = self.model.extract_features(wavs, lengths)
        return features, frames.clamp(min=0)

    def hidden_states(self, wavs: torch.Tensor, lengths: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every Transformer layer's output (B, F, dim), first to last."""
        features, frames = self._layers(wavs, lengths)
        return [(f, frames) for f in features]


def _receptive_field(conv_layers) -> int:
    size = 1
    for _, kernel, stride in reversed(conv_layers):
        size = (size - 1) * stride + kernel
    return size


# The first bytes of the two formats torch.save writes: a zip archive (the default) or a bare pickle.
PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")


def read_init_checkpoint(path: str, expected: dict) -> dict:
    """{name: tensor} from a user's ``init_checkpoint``, without unpickling anything.

    Raises:
        LoadError (a ValueError, one line naming the file): missing, a pickle, not a readable safetensors
            file, or tensors missing from, not in, or of another shape than ``expected`` (the model's state).
    """
    def refuse(file, reason):
        return LoadError(file, f"init_checkpoint of the transformer encoder: {reason}")

    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise refuse(path, "file not found") from None
    except OSError as err:
        raise refuse(path, f"cannot read it ({err.strerror or err})") from None
    if head.startswith(PICKLE_MAGIC):
        # torch.load(weights_only=True) would still run an unpickler on a file of unknown origin.
        raise refuse(path, "a pickled PyTorch file (torch.save); avpretext reads weights only from safetensors "
                           "files, never unpickles: convert the state dict once with safetensors.torch.save_file")
    return read_safetensors(path, expected, refuse)
