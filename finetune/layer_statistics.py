"""A frozen encoder as a feature extractor for the classic classifier: statistics of every layer.

Mode ``lrprobe`` of :mod:`finetune.experiment` reads an encoder the way the classic baseline reads openSMILE
(:mod:`finetune.baseline`): one fixed vector per file, then the same standardised, class-balanced logistic
regression with C chosen on the dev speakers. The vector is the mean and standard deviation over time of each
of the encoder's hidden states (:meth:`encoders.base.SpeechEncoder.hidden_states`; ``layers = "all"``), or of
its output frames only (``"last"``), concatenated. Reading every layer, not only the last, follows SUPERB's
practice for frozen encoders (Yang et al., Interspeech 2021, a learnable weighted sum of all hidden states); an
utterance-level mean and standard deviation is x-vector statistics pooling (Snyder et al., ICASSP 2018), the
same kind of summary eGeMAPS's functionals are of its frame descriptors (Eyben et al. 2016). The classifier
being the baseline's own, a difference between the two rows is a difference of features alone. With ``--fuse
egemaps|compare`` the functionals join the statistics in the same regression (early fusion).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from avpretext.common.audio import AudioError, read_audio
from avpretext.common.batches import crop_bounds
from encoders.base import SpeechEncoder, masked_mean_std
from finetune.config import LRPROBE
from finetune.opensmile_features import Functionals
from finetune.probe_cache import encoder_key, kept_cache

LAYER_CHOICES = ("all", "last")
# Rows by (encoder weights, crop, layers) and file, kept across the cells of a grid that share an encoder (every
# fraction and seed of a pretrained encoder, every fold of a scratch seed): each file is read through it once.
_ROWS: dict[str, dict[str, np.ndarray]] = {}
_ROWS_KEPT = 8  # about 2 MB each for 1,440 files of a small cnn


def check_layers(layers: str) -> str:
    if layers not in LAYER_CHOICES:
        raise ValueError(f"--probe-layers {layers!r}: choose from {', '.join(LAYER_CHOICES)}")
    return layers


# Options of the gradient-trained modes that this readout has no place for: refused rather than ignored, so a
# result is never labelled with a method that did not run.
_NOT_IN_LRPROBE = {"dimensions": "", "chunk_seconds": 0.0, "mixup_alpha": 0.0, "speaker_weight": 0.0,
                   "gender_weight": 0.0, "cluster_weight": 0.0}


def check_lrprobe(config) -> None:
    """ValueError naming the option when an ``lrprobe`` config asks for something the readout does not do."""
    if config.mode != LRPROBE:
        return
    check_layers(config.probe_layers)
    for name, off in _NOT_IN_LRPROBE.items():
        if getattr(config, name) != off:
            raise ValueError(f"--mode lrprobe (frozen encoder statistics + logistic regression, classes only) "
                             f"does not take --{name.replace('_', '-')} {getattr(config, name)!r}")


@torch.no_grad()
def layer_statistics(encoder: SpeechEncoder, wav: torch.Tensor, layers: str = "all") -> np.ndarray:
    """(2 * sum D_l,) float32: mean and standard deviation over frames of each hidden state of one (T,) 16 kHz
    waveform, layer after layer (``layers="last"``: the output frames only)."""
    wavs, lengths = wav[None], torch.tensor([len(wav)])
    # "last": the base class's hidden_states, which every encoder without an override uses (its output frames).
    states = (encoder.hidden_states(wavs, lengths) if layers == "all"
              else SpeechEncoder.hidden_states(encoder, wavs, lengths))
    return torch.cat([masked_mean_std(frames.float(), n)[0] for frames, n in states]).numpy()


class EncoderStatistics:
    """Per-file :func:`layer_statistics` of a frozen encoder, kept in memory (for the last few encoders).

    ``compute(paths)`` -> ((N, F) float32, [(path, reason) skipped]), unreadable files as NaN rows: the
    interface of :class:`finetune.opensmile_features.Functionals`, so :func:`finetune.baseline.run_baseline_cell`
    reads either. Each file is read whole and cut to its centred ``max_seconds`` (the evaluation crop of the
    neural modes).
    """

    def __init__(self, encoder: SpeechEncoder, layers: str = "all", max_seconds: float = 10.0,
                 device: str | torch.device = "cpu"):
        self.encoder = encoder.to(device).eval()
        self.layers, self.device = check_layers(layers), device
        self.max_samples = int(round(max_seconds * encoder.sample_rate))
        self.key = hashlib.sha1(f"{encoder_key(encoder, max_seconds)}|{layers}".encode()).hexdigest()
        self._rows = kept_cache(_ROWS, self.key, _ROWS_KEPT)
        self.dim = len(self.of_signal(torch.zeros(encoder.sample_rate)))

    def of_signal(self, wav: torch.Tensor) -> np.ndarray:
        start, stop = crop_bounds(0, len(wav), self.max_samples)
        return layer_statistics(self.encoder, wav[start:stop].to(self.device), self.layers)

    def compute(self, paths) -> tuple[np.ndarray, list[tuple[str, str]]]:
        rows, skipped = np.full((len(paths), self.dim), np.nan, dtype=np.float32), []
        for i, path in enumerate(paths):
            path = str(path)
            try:
                if path not in self._rows:
                    self._rows[path] = self.of_signal(read_audio(path))
                rows[i] = self._rows[path]
            except AudioError as err:
                skipped.append((path, err.reason))
        return rows, skipped


class ConcatenatedFeatures:
    """Several per-file feature extractors side by side (``compute``/``dim`` like each part): early fusion for
    the logistic regression, e.g. an encoder's statistics and eGeMAPS functionals. A file any part cannot
    read is a NaN row, listed once."""

    def __init__(self, parts: list):
        self.parts = parts
        self.dim = sum(part.dim for part in parts)

    def compute(self, paths) -> tuple[np.ndarray, list[tuple[str, str]]]:
        blocks, skipped = [], {}
        for part in self.parts:
            values, bad = part.compute(paths)
            blocks.append(values)
            skipped.update({path: reason for path, reason in bad if path not in skipped})
        return np.concatenate(blocks, axis=1), list(skipped.items())


def run_lrprobe_cell(config, split, targets, out, device="cpu", write: bool = True) -> dict:
    """One cell of mode ``lrprobe``: the config's encoder (pretrained, or its architecture with weights drawn
    from ``config.seed``) frozen, its :func:`layer_statistics` per file, then the classic baseline's classifier
    (:func:`finetune.baseline.run_baseline_cell`). Writes ``out/metrics.json``; returns the metrics."""
    from accelerate.utils import set_seed

    from finetune.baseline import run_baseline_cell
    from finetune.model import resolve_init

    set_seed(config.seed)  # the scratch encoder's weights
    encoder, pretrained, source = resolve_init(config)
    features = EncoderStatistics(encoder, config.probe_layers, config.eval_max_seconds, device)
    described = f"{encoder.name} hidden-state statistics ({config.probe_layers})"
    if config.fuse:  # --fuse: the openSMILE functionals beside the statistics, in the same regression
        features = ConcatenatedFeatures([features, Functionals(config.fuse)])
        described += f" + {config.fuse} functionals"
    record = {"init": "pretrained" if pretrained else "scratch", "pretrained": pretrained, "encoder_source": source,
              "feature_set": described, "fuse": config.fuse}
    return run_baseline_cell(config, split, targets, out, features, write, record)
