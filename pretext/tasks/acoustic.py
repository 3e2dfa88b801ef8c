"""Acoustic-descriptor pretext task: regress eGeMAPS low-level descriptors from the encoder's frames.

PASE+ [0] trains a speech encoder with "workers", among them regressors of hand-made acoustic features from
its frames (log power spectrum, MFCCs, filter banks, gammatone features, and prosody: pitch, voicing,
zero-crossing rate, energy). Classic emotion feature sets summarise descriptors of that kind (pitch, loudness,
spectral shape) and add voice quality [1]. Here the targets are the 25 low-level descriptors of eGeMAPSv02
[1] as openSMILE computes them (``FeatureLevel.LowLevelDescriptors``, one frame every 10 ms): loudness, alpha
ratio, Hammarberg index, spectral slopes 0-500 and 500-1500 Hz, spectral flux, MFCC 1-4, and on voiced frames
only (openSMILE's ``_sma3nz`` descriptors, 0 elsewhere) F0 in semitones, jitter, shimmer, HNR, H1-H2, H1-A3,
and F1-F3 frequency, bandwidth and relative amplitude. It needs audio alone, so any unlabelled speech serves.

Label stage: :meth:`AcousticTask.fit_context` computes every item's descriptors once, cached as
``<audio stem>.egemaps_lld.npy`` beside its audio (float32 (F, 25), raw values; reused while it is newer than
the audio), and their mean and standard deviation over the corpus's speech frames (voiced frames for the
voiced-only descriptors). Each segment row records its descriptor file and those statistics, so a training
crop reads its frames and standardises them (:meth:`AcousticTask.frame_targets`); voiced-only descriptors are
NaN (no target) on unvoiced frames.

Training: a per-frame MLP on the encoder's frames, L1 (default) or L2 loss against the standardised
descriptors averaged into each encoder frame; validation reports Pearson's r and the CCC per descriptor.

[0] M. Ravanelli et al., "Multi-task self-supervised learning for robust speech recognition" (PASE+),
    ICASSP 2020.
[1] F. Eyben et al., "The Geneva Minimalistic Acoustic Parameter Set (GeMAPS) for voice research and
    affective computing", IEEE Transactions on Affective Computing, 2016.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from avpretext.common.io import write_npy_atomic

from .base import FrameRegressionTask
from .labelling import frames_in

SAMPLE_RATE = 16000
FRAME_RATE = 100.0  # eGeMAPS LLD frames per second (10 ms hop)
LLD_SUFFIX = ".egemaps_lld.npy"
# The eGeMAPSv02 LLDs in openSMILE's column order (opensmile 2.x); checked against the library when computing.
DESCRIPTORS = ("Loudness_sma3", "alphaRatio_sma3", "hammarbergIndex_sma3", "slope0-500_sma3",
               "slope500-1500_sma3", "spectralFlux_sma3", "mfcc1_sma3", "mfcc2_sma3", "mfcc3_sma3", "mfcc4_sma3",
               "F0semitoneFrom27.5Hz_sma3nz", "jitterLocal_sma3nz", "shimmerLocaldB_sma3nz", "HNRdBACF_sma3nz",
               "logRelF0-H1-H2_sma3nz", "logRelF0-H1-A3_sma3nz", "F1frequency_sma3nz", "F1bandwidth_sma3nz",
               "F1amplitudeLogRelF0_sma3nz", "F2frequency_sma3nz", "F2bandwidth_sma3nz",
               "F2amplitudeLogRelF0_sma3nz", "F3frequency_sma3nz", "F3bandwidth_sma3nz",
               "F3amplitudeLogRelF0_sma3nz")
PITCH = DESCRIPTORS.index("F0semitoneFrom27.5Hz_sma3nz")  # 0 on unvoiced frames
LOSSES = ("l1", "l2")
CLIP = 5.0  # standardised targets clipped to +-5: one glitch frame must not dominate an L2 loss


@dataclass
class AcousticConfig:
    # Which eGeMAPS LLDs to regress (names of DESCRIPTORS); empty: all 25.
    descriptors: list = field(default_factory=list)
    loss: str = "l1"  # l1 | l2: the error between standardised descriptors and the head's prediction
    # Fewer speech frames than this fraction of the segment: no targets (mostly silence), as for energy.
    min_speech_fraction: float = 0.3

    def __post_init__(self):
        self.descriptors = list(self.descriptors or [])
        unknown = [d for d in self.descriptors if d not in DESCRIPTORS]
        if unknown:
            raise ValueError(f"acoustic.descriptors: unknown {unknown}; choose from {list(DESCRIPTORS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"acoustic.loss {self.loss!r}: choose from {LOSSES}")
        if not 0 <= self.min_speech_fraction <= 1:
            raise ValueError(f"acoustic.min_speech_fraction {self.min_speech_fraction}: between 0 and 1")

    @property
    def chosen(self) -> list[str]:
        return self.descriptors or list(DESCRIPTORS)


def voiced_only(name: str) -> bool:
    """openSMILE's ``_sma3nz`` descriptors exist on voiced frames only (0 elsewhere)."""
    return name.endswith("_sma3nz")


@lru_cache(maxsize=1)
def _smile():
    import opensmile  # heavy, needed only when this task labels

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
    if tuple(smile.feature_names) != DESCRIPTORS:
        raise RuntimeError(f"this opensmile's eGeMAPSv02 LLDs differ from the task's: {smile.feature_names}")
    return smile


def lld_path(audio_path: str | Path) -> Path:
    """Where an audio file's descriptors are cached: beside it, ``<stem>.egemaps_lld.npy``."""
    audio_path = Path(audio_path)
    return audio_path.with_name(audio_path.stem + LLD_SUFFIX)


def compute_llds(audio_path: str | Path) -> np.ndarray:
    """(F, 25) float32 eGeMAPSv02 LLDs of a whole audio file at 16 kHz, frame k starting at k * 10 ms."""
    from avpretext.common.audio import read_audio  # imports torch: heavy, needed only when this task labels

    wav = read_audio(audio_path).numpy()
    if len(wav) == 0:
        return np.zeros((0, len(DESCRIPTORS)), dtype=np.float32)
    return _smile().process_signal(wav, SAMPLE_RATE).to_numpy(np.float32)


def cached_llds(audio_path: str | Path) -> np.ndarray:
    """The audio file's LLDs from its cache file, computed and written (atomically) when missing or older than
    the audio. Raises AudioError (unreadable audio) or RuntimeError (openSMILE failed)."""
    path, audio_path = lld_path(audio_path), Path(audio_path)
    if path.is_file() and path.stat().st_mtime >= audio_path.stat().st_mtime:
        try:
            llds = np.load(path, mmap_mode="r")
            if llds.ndim == 2 and llds.shape[1] == len(DESCRIPTORS):
                return llds
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed
    llds = compute_llds(audio_path)
    write_npy_atomic(path, llds)
    return llds


def frame_selection(count: int, start_s: float, end_s: float) -> slice:
    """The LLD frames whose 10 ms hop starts inside ``[start_s, end_s)``."""
    first = min(count, max(0, int(np.ceil(start_s * FRAME_RATE - 1e-6))))
    return slice(first, min(count, max(first, int(np.ceil(end_s * FRAME_RATE - 1e-6)))))


def masked_llds(llds: np.ndarray) -> np.ndarray:
    """(F, 25) float64 with the voiced-only descriptors NaN on unvoiced frames (F0 = 0)."""
    values = np.array(llds, dtype=np.float64)
    unvoiced = values[:, PITCH] <= 0
    values[np.ix_(unvoiced, [voiced_only(d) for d in DESCRIPTORS])] = np.nan
    return values


@dataclass
class AcousticContext:
    """Corpus statistics of the descriptors (over speech frames; voiced ones for voiced-only descriptors)."""

    mean: np.ndarray  # (25,)
    std: np.ndarray  # (25,)
    frames: int  # speech frames counted
    voiced_share: float
    failed: dict  # media id -> why its descriptors could not be computed


class AcousticTask(FrameRegressionTask):
    name = "acoustic"
    Config = AcousticConfig
    classes = ()
    label_meaning = ""

    def target_names(self, cfg: AcousticConfig) -> list[str]:
        return cfg.chosen

    # -- label stage -------------------------------------------------------------------------------------
    def fit_context(self, medias, cfg: AcousticConfig) -> AcousticContext:
        """Compute (or read from the cache) every item's LLDs; their mean and std over the speech frames."""
        from avpretext.common.audio import AudioError  # imports torch: heavy, needed only when this task labels

        total = np.zeros(len(DESCRIPTORS))
        squares = np.zeros(len(DESCRIPTORS))
        counts = np.zeros(len(DESCRIPTORS))
        frames, voiced, failed = 0, 0, {}
        for media in medias:
            if media.audio_path is None:
                continue
            try:
                values = masked_llds(cached_llds(media.audio_path))
            except (AudioError, RuntimeError, OSError, ValueError) as err:  # one bad item never stops the corpus
                failed[media.id] = f"{type(err).__name__}: {err}"
                continue
            speech = _speech_of_frames(media, len(values))
            values = values[speech]
            finite = np.isfinite(values)
            total += np.where(finite, values, 0).sum(0)
            squares += np.where(finite, values ** 2, 0).sum(0)
            counts += finite.sum(0)
            frames, voiced = frames + len(values), voiced + int(finite[:, PITCH].sum())
        mean = total / np.maximum(counts, 1)
        std = np.sqrt(np.maximum(squares / np.maximum(counts, 1) - mean ** 2, 0))
        return AcousticContext(mean, np.where(std > 1e-8, std, 1.0), frames, voiced / max(frames, 1), failed)

    def segment_values(self, media, segments, cfg: AcousticConfig, context: AcousticContext = None) -> list[dict]:
        """Per segment: its descriptor file (empty when there is none), the share of speech frames, and the
        corpus statistics that standardise its targets."""
        if context is None:
            context = self.fit_context([media], cfg)
        has_llds = media.audio_path is not None and media.id not in context.failed
        path = str(lld_path(media.audio_path)) if has_llds else ""
        energy_times = np.arange(len(media.energy)) / media.energy_rate
        speech = media.speech if media.speech is not None else np.ones(len(media.energy), dtype=bool)
        mean, std = [float(v) for v in context.mean], [float(v) for v in context.std]
        rows = []
        for start, end in segments:
            window = frames_in(energy_times, speech, start, end)
            rows.append({"acoustic_lld": path, "acoustic_speech_fraction": window.coverage,
                         "acoustic_mean": mean, "acoustic_std": std})
        return rows

    def assign_labels(self, table: pd.DataFrame, cfg: AcousticConfig) -> tuple[pd.DataFrame, dict]:
        mask = (table["acoustic_lld"] != "") & (table["acoustic_speech_fraction"] >= cfg.min_speech_fraction)
        label = pd.Series(np.where(mask, 0, -1), index=table.index, dtype=np.int64)
        first = table.iloc[0]
        facts = {"targets": f"{len(cfg.chosen)} eGeMAPSv02 LLDs every 10 ms, standardised over the corpus",
                 "standardisation": {d: f"{m:.4g} +- {s:.3g}" for d, m, s in
                                     zip(DESCRIPTORS, first["acoustic_mean"], first["acoustic_std"])
                                     if d in cfg.chosen}}
        return table.assign(acoustic_label=label, acoustic_mask=mask), facts

    def label_statistics(self, labelled: pd.DataFrame, classes: list[str]) -> tuple[dict, list[str]]:
        """Frames with targets, the voiced share, and the spread of each descriptor's segment means (in corpus
        standard deviations): a descriptor whose segment means barely differ gives little to learn."""
        frames, voiced, means = 0, 0, []
        for path, group in labelled.groupby("acoustic_lld"):
            values = masked_llds(np.load(path, mmap_mode="r"))
            for _, row in group.iterrows():
                chosen = values[frame_selection(len(values), row["start"], row["end"])]
                standard = (chosen - np.asarray(row["acoustic_mean"])) / np.asarray(row["acoustic_std"])
                frames, voiced = frames + len(chosen), voiced + int(np.isfinite(chosen[:, PITCH]).sum())
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a descriptor without a voiced frame: NaN
                    means.append(np.nanmean(standard, axis=0) if len(chosen) else np.full(len(DESCRIPTORS), np.nan))
        spread = np.nanstd(np.asarray(means), axis=0) if means else np.full(len(DESCRIPTORS), np.nan)
        stats = {"frames": frames, "voiced_share": round(voiced / max(frames, 1), 3),
                 "segment_mean_sd": {d: round(float(s), 3) for d, s in zip(DESCRIPTORS, spread)}}
        notes = [] if voiced else ["no voiced frame: the pitch and voice-quality targets are all missing"]
        return stats, notes

    def audit_values(self, media, segments, cfg: AcousticConfig, context: AcousticContext = None) -> list[dict]:
        """Per segment the mean of each chosen descriptor in corpus standard deviations (voiced frames for the
        voiced-only ones): ``data_prep audit`` averages them per reference emotion, which shows what the
        targets carry (e.g. louder, higher speech in anger)."""
        if context is None:
            context = self.fit_context([media], cfg)
        if media.audio_path is None or media.id in context.failed:
            return [{} for _ in segments]
        llds = masked_llds(cached_llds(media.audio_path))
        columns = [DESCRIPTORS.index(d) for d in cfg.chosen]
        rows = []
        for start, end in segments:
            standard = (llds[frame_selection(len(llds), start, end)] - context.mean) / context.std
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a descriptor without a voiced frame: NaN
                means = np.nanmean(standard[:, columns], axis=0) if len(standard) else np.full(len(columns), np.nan)
            rows.append({f"{DESCRIPTORS[c]}_z": float(m) for c, m in zip(columns, means)})
        return rows

    # -- training ------------------------------------------------------------------------------------------
    def frame_targets(self, row: pd.Series, start: int, stop: int, cfg: AcousticConfig) -> np.ndarray:
        """(F, D + 1): the standardised descriptors of samples ``[start, stop)``, NaN for voiced-only ones on
        unvoiced frames, and a column of ones (see :meth:`PretextTask.frame_targets`)."""
        columns = [DESCRIPTORS.index(d) for d in cfg.chosen]
        if not row["acoustic_lld"]:
            return np.zeros((0, len(columns) + 1), dtype=np.float32)
        llds = np.load(row["acoustic_lld"], mmap_mode="r")
        values = masked_llds(llds[frame_selection(len(llds), start / SAMPLE_RATE, stop / SAMPLE_RATE)])
        standard = (values - np.asarray(row["acoustic_mean"])) / np.asarray(row["acoustic_std"])
        standard = np.clip(standard[:, columns], -CLIP, CLIP)
        return np.concatenate([standard, np.ones((len(standard), 1))], axis=1).astype(np.float32)


def _speech_of_frames(media, count: int) -> np.ndarray:
    """(count,) bool: whether each 10 ms LLD frame falls on a speech frame of ``media.speech`` (all frames
    when no speech mask is set)."""
    if media.speech is None or not len(media.speech):
        return np.ones(count, dtype=bool)
    index = np.minimum((np.arange(count) / FRAME_RATE * media.energy_rate).astype(int), len(media.speech) - 1)
    return np.asarray(media.speech, dtype=bool)[index]
