"""Acoustic-cluster pretext task: which of k acoustic pseudo-classes does a segment's speech fall in?

DeepEmoCluster [0] trains an emotion network end to end on mel-spectrograms with k-means pseudo-classes of its
own representations (DeepCluster [1] applied to speech emotion: cluster, predict the cluster index, re-cluster
as training goes), alongside a supervised emotional-attribute regressor on the labelled part (semi-supervised).
Unlike the face tasks it needs audio alone, so it scales with any unlabelled speech. The label stage makes
round 0 from hand-made descriptors of each segment's speech frames; pretraining's ``--recluster-every``
(:mod:`pretext.deep_cluster`) runs the loop on the encoder's own embeddings, and :func:`recluster` one round on
an exported encoder. The descriptors:

* log-mel band energies (mean and std over speech frames): spectral envelope and its variation (tilt and
  brightness rise with vocal effort);
* frame energy statistics (mean/std/range in dB, as :mod:`pretext.tasks.energy` computes them);
* spectral centroid (mean/std, log Hz), and a voicing/pitch proxy from the normalised autocorrelation
  (voicing strength, voiced share, log-f0 mean/std over voiced frames): prosody, the strongest arousal cue.

Recordings differ by 18-20 dB in level and by their channel (measured on real corpora, see
:mod:`pretext.tasks.energy`), so raw descriptors would cluster by recording. Each descriptor is therefore
robustly standardised within its group (speaker, else video: :func:`~pretext.tasks.base.resolve_group`)
before PCA and k-means: a cluster says how a segment differs from its speaker's usual voice.

[0] W.-C. Lin, K. Sridhar and C. Busso, "DeepEmoCluster: a semi-supervised framework for latent cluster
    representation of speech emotions", ICASSP 2021.
[1] M. Caron et al., "Deep clustering for unsupervised learning of visual features", ECCV 2018.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from .base import GROUP_CHOICES, ClassificationTask, frames_in, resolve_group
from .energy import energy_statistic

SAMPLE_RATE = 16000
N_FFT = 1024  # zero-padded 25 ms frames: 15.6 Hz bins, and autocorrelation lags up to 40 ms without wrap-around
F0_RANGE_HZ = (60.0, 400.0)  # pitch search range of the voicing proxy (adult speech)
VOICED = 0.5  # normalised autocorrelation peak above which a frame counts as voiced
NORM_CLIP = 5.0  # standardised descriptors are clipped to +-5: one odd segment must not own a cluster
# Warn when the largest cluster holds more than this share of the labelled segments: the clustering then
# mostly says "typical segment", which teaches little (with k = 8 an even split is 12.5% each).
LARGEST_CLUSTER_WARNING = 0.5


@dataclass
class ClusterConfig:
    # Number of pseudo-classes. DeepEmoCluster found a few to a few tens useful; 8 keeps clusters populated
    # (hundreds of segments each) on a few hours of speech and is about the number of emotion classes.
    k: int = 8
    # Log-mel bands of the spectral descriptor. 32 resolves formant regions and spectral tilt; more bands add
    # dimensions that are highly correlated (PCA takes most of them away again).
    n_mels: int = 32
    # Whose statistics standardise the descriptors: auto (speaker when known, else video, else corpus),
    # speaker, video, corpus. Per speaker or video removes recording level and channel (resolve_group).
    group: str = "auto"
    # Groups with fewer valid segments get no label: a median and IQR of 1-3 values say little.
    min_group_size: int = 4
    # Fewer speech frames than this fraction of the segment: no label (mostly silence), as for energy.
    min_speech_fraction: float = 0.3
    # Seeds k-means++ initialisation; the same seed and table give the same labels.
    seed: int = 0
    # k-means runs from this many initialisations and keeps the lowest inertia: one run can land in a poor
    # local minimum; 4 costs little next to reading the audio.
    restarts: int = 4
    # Principal components kept before k-means (0 = all descriptors). 16 keeps most of the variance of the
    # ~70 correlated descriptors while dropping noisy directions, and stops the mel bands (2 x n_mels of the
    # dimensions) from outvoting the prosodic ones by sheer number.
    pca_dim: int = 16

    def __post_init__(self):
        if self.k < 2:
            raise ValueError(f"cluster.k = {self.k}: need at least 2 clusters")
        if not 4 <= self.n_mels <= 128:
            raise ValueError(f"cluster.n_mels = {self.n_mels}: choose 4 to 128 bands")
        if self.group not in GROUP_CHOICES:
            raise ValueError(f"cluster.group {self.group!r}: choose from {GROUP_CHOICES}")
        if self.min_group_size < 2:
            raise ValueError(f"cluster.min_group_size = {self.min_group_size}: a spread needs at least 2")
        if not 0 <= self.min_speech_fraction <= 1:
            raise ValueError(f"cluster.min_speech_fraction = {self.min_speech_fraction}: must be in [0, 1]")
        if self.restarts < 1:
            raise ValueError(f"cluster.restarts = {self.restarts}: at least 1")
        if self.pca_dim < 0:
            raise ValueError(f"cluster.pca_dim = {self.pca_dim}: 0 (no PCA) or a positive number")

    @property
    def class_names(self) -> list[str]:
        return [f"c{i}" for i in range(self.k)]


def descriptor_names(n_mels: int) -> list[str]:
    """Names of the descriptor dimensions, in column order (``cluster_d000`` is the first)."""
    return ([f"mel{i}_mean" for i in range(n_mels)] + [f"mel{i}_std" for i in range(n_mels)]
            + ["energy_mean_db", "energy_std_db", "energy_range_db", "centroid_mean", "centroid_std",
               "voicing_mean", "voiced_share", "logf0_mean", "logf0_std"])


def descriptor_columns(n_mels: int) -> list[str]:
    return [f"cluster_d{i:03d}" for i in range(len(descriptor_names(n_mels)))]


@lru_cache(maxsize=8)
def _analysis(window: int, n_mels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Hann window (W,), mel filters (N_FFT/2+1, n_mels), bin frequencies (N_FFT/2+1,), the window's own
    normalised autocorrelation (N_FFT/2+1,)), computed once per configuration."""
    import torchaudio

    hann = np.hanning(window + 2)[1:-1].astype(np.float32)  # periodic-like: no zero end samples
    filters = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 50.0, SAMPLE_RATE / 2, n_mels, SAMPLE_RATE,
                                                    norm="slaney", mel_scale="slaney").numpy()
    freqs = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE).astype(np.float32)
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(hann, N_FFT)) ** 2, N_FFT)[: N_FFT // 2 + 1]
    return hann, filters.astype(np.float32), freqs, (window_ac / window_ac[0]).astype(np.float32)


def frame_descriptors(frames: np.ndarray, n_mels: int) -> dict[str, np.ndarray]:
    """Per-frame spectral and voicing features of analysis frames ``(F, W)`` at 16 kHz.

    Returns:
        ``logmel`` (F, n_mels) dB; ``centroid`` (F,) log2 Hz; ``voicing`` (F,) normalised autocorrelation
        peak in the pitch range (0..1, corrected for the window's taper as in Boersma 1993); ``logf0`` (F,)
        log2 Hz of that peak.
    """
    hann, filters, freqs, window_ac = _analysis(frames.shape[1], n_mels)
    spectrum = np.fft.rfft(frames * hann, N_FFT)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)  # (F, N_FFT/2+1)
    logmel = 10 * np.log10(power @ filters + 1e-10)
    total = power.sum(1) + 1e-10
    centroid = np.log2((power @ freqs) / total + 1.0)
    # Autocorrelation = inverse FFT of the power spectrum (Wiener-Khinchin); divided by the window's own
    # autocorrelation so long lags (low pitch) are not penalised by the taper.
    autocorr = np.fft.irfft(power, N_FFT)[:, : N_FFT // 2 + 1]
    lo, hi = int(SAMPLE_RATE / F0_RANGE_HZ[1]), int(SAMPLE_RATE / F0_RANGE_HZ[0])
    normalised = autocorr[:, lo:hi + 1] / (autocorr[:, :1] + 1e-10) / window_ac[lo:hi + 1]
    best = normalised.argmax(1)
    voicing = np.clip(normalised[np.arange(len(best)), best], 0.0, 1.0)
    logf0 = np.log2(SAMPLE_RATE / (lo + best))
    return {"logmel": logmel, "centroid": centroid, "voicing": voicing, "logf0": logf0}


def segment_descriptor(frames: np.ndarray, energy_db: np.ndarray, n_mels: int) -> np.ndarray:
    """The fixed-length descriptor of one segment's speech frames: ``(F, W) frames, (F,) dB -> (D,) float32``
    in the order of :func:`descriptor_names`. Log-f0 statistics are NaN when no frame is voiced."""
    f = frame_descriptors(frames, n_mels)
    voiced = f["voicing"] > VOICED
    logf0 = f["logf0"][voiced]
    values = [f["logmel"].mean(0), f["logmel"].std(0),
              [energy_statistic(energy_db, s) for s in ("mean_db", "std_db", "range_db")],
              [f["centroid"].mean(), f["centroid"].std(), f["voicing"].mean(), voiced.mean(),
               logf0.mean() if len(logf0) else np.nan, logf0.std() if len(logf0) > 1 else np.nan]]
    return np.concatenate([np.asarray(v, dtype=np.float64) for v in values]).astype(np.float32)


def standardise_within_groups(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Robust z-score of each column within each group: (x - median) / (IQR / 1.349), NaN -> 0 (the group's
    typical value), clipped to +-:data:`NORM_CLIP`. ``(N, D), (N,) -> (N, D)``.

    A column constant within a group (IQR 0) falls back to its standard deviation, then to 1.
    """
    out = np.zeros_like(x, dtype=np.float64)
    for key in pd.unique(groups):
        rows = groups == key
        part = x[rows].astype(np.float64)
        with warnings.catch_warnings():  # all-NaN columns (log-f0 of a group without voicing) are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(part, axis=0)
            q75, q25 = np.nanpercentile(part, [75, 25], axis=0)
            std = np.nanstd(part, axis=0)
        scale = (q75 - q25) / 1.349  # the IQR of a normal distribution is 1.349 standard deviations
        scale = np.where(scale > 1e-6, scale, np.where(std > 1e-6, std, 1.0))
        scale = np.nan_to_num(scale, nan=1.0)
        out[rows] = np.nan_to_num((part - np.nan_to_num(median)) / scale, nan=0.0)
    return np.clip(out, -NORM_CLIP, NORM_CLIP)


def pca(x: np.ndarray, dim: int) -> np.ndarray:
    """Projection of centred ``x (N, D)`` on its first ``dim`` principal components ``-> (N, min(dim, D, N))``;
    ``dim = 0`` returns ``x`` centred. Deterministic (SVD; a component's sign does not change distances)."""
    centred = x - x.mean(0)
    if dim == 0:
        return centred
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:dim].T


def kmeans(x: np.ndarray, k: int, seed: int, restarts: int, iterations: int = 100
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means (k-means++ initialisation, Lloyd iterations), best of ``restarts`` by inertia.

    Args:
        x: (N, D) points, N >= k.

    Returns:
        (labels (N,) int64, centres (k, D), inertia = summed squared distance to the assigned centre). Clusters
        are numbered by decreasing size (ties: by first centre coordinate), so ``c0`` is the largest and the
        numbering does not depend on which restart won. An emptied cluster is re-seeded at the point furthest
        from its centre.
    """
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(restarts):
        centres = _kmeans_pp(x, k, rng)
        labels = None
        for _ in range(iterations):
            # |x|^2 - 2 x.c + |c|^2: (N, k) without an (N, k, D) intermediate, for millions of segments.
            distances = (x ** 2).sum(1)[:, None] - 2 * x @ centres.T + (centres ** 2).sum(1)[None]
            new = distances.argmin(1)
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            for c in range(k):
                members = labels == c
                if members.any():
                    centres[c] = x[members].mean(0)
                else:
                    far = distances[np.arange(len(x)), labels].argmax()
                    centres[c], labels[far] = x[far], c
        inertia = float(((x - centres[labels]) ** 2).sum())
        if best is None or inertia < best[2] - 1e-9:
            best = (labels.copy(), centres.copy(), inertia)
    labels, centres, inertia = best
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], centres[c, 0]))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels], centres[order], inertia


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur and Vassilvitskii 2007): each next centre drawn with probability
    proportional to its squared distance from the nearest centre so far. ``(N, D) -> (k, D)``."""
    centres = [x[rng.integers(len(x))]]
    nearest = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = nearest.sum()
        pick = rng.choice(len(x), p=nearest / total) if total > 0 else rng.integers(len(x))
        centres.append(x[pick])
        nearest = np.minimum(nearest, ((x - x[pick]) ** 2).sum(1))
    return np.array(centres, dtype=np.float64)


class ClusterTask(ClassificationTask):
    name = "cluster"
    Config = ClusterConfig
    classes = ()  # from the config: c0..c{k-1} (ClusterConfig.class_names)

    def num_classes(self, cfg: ClusterConfig) -> int:
        return cfg.k

    def segment_values(self, media, segments, cfg: ClusterConfig, context=None) -> list[dict]:
        """Per segment: ``cluster_d000..`` (float32 descriptor of its speech frames, :func:`descriptor_names`),
        ``cluster_speech_fraction`` and ``cluster_valid`` (speech fraction >= ``min_speech_fraction``).

        The audio of each segment's speech span is read from ``media.audio_path`` with seeking (16 kHz mono,
        as extraction writes it), so hour-long recordings never sit in memory.
        """
        import soundfile as sf

        from data_prep.audio_features import WINDOW

        columns = descriptor_columns(cfg.n_mels)
        empty = {**{c: np.float32(np.nan) for c in columns}, "cluster_speech_fraction": 0.0, "cluster_valid": False}
        if media.audio_path is None or len(media.energy) == 0:
            return [dict(empty) for _ in segments]
        energy = np.asarray(media.energy)
        times = np.arange(len(energy)) / media.energy_rate
        hop = int(round(SAMPLE_RATE / media.energy_rate))  # energy frame e covers samples [e*hop, e*hop+WINDOW)
        rows = []
        with sf.SoundFile(str(media.audio_path)) as audio:
            if audio.samplerate != SAMPLE_RATE:
                raise ValueError(f"{media.audio_path}: {audio.samplerate} Hz, expected the extracted 16 kHz")
            for start, end in segments:
                window = frames_in(times, media.speech, start, end)
                index = np.flatnonzero(window.selected)
                if window.coverage < cfg.min_speech_fraction or len(index) < 2:
                    rows.append({**empty, "cluster_speech_fraction": window.coverage})
                    continue
                audio.seek(int(index[0]) * hop)
                samples = audio.read((int(index[-1] - index[0])) * hop + WINDOW, dtype="float32", always_2d=True)
                samples = samples.mean(1)
                if len(samples) < (index[-1] - index[0]) * hop + WINDOW:  # the last frame was zero-padded
                    samples = np.pad(samples, (0, (index[-1] - index[0]) * hop + WINDOW - len(samples)))
                frames = np.lib.stride_tricks.sliding_window_view(samples, WINDOW)[::hop][index - index[0]]
                descriptor = segment_descriptor(frames, energy[index], cfg.n_mels)
                rows.append({**dict(zip(columns, descriptor)), "cluster_speech_fraction": window.coverage,
                             "cluster_valid": True})
        return rows

    def assign_labels(self, table: pd.DataFrame, cfg: ClusterConfig) -> tuple[pd.DataFrame, dict]:
        """``cluster_label`` (cluster index, -1 when masked) and ``cluster_mask`` from the descriptors:
        standardised within groups, projected by PCA, clustered by k-means.

        Segments of groups with fewer than ``min_group_size`` valid segments are masked. Facts: the classes,
        group, k, cluster sizes, inertia, the largest cluster's share, and a warning when it exceeds
        :data:`LARGEST_CLUSTER_WARNING`.
        """
        columns = descriptor_columns(cfg.n_mels)
        missing = [c for c in columns if c not in table]
        if missing:
            raise ValueError(f"cluster: the table lacks {missing[:3]}...; label with the same n_mels as the "
                             "descriptors were computed with")
        x = table[columns].to_numpy(np.float64)
        table, facts = cluster_table(table, x, table["cluster_valid"].astype(bool), cfg)
        return table, {**facts, "descriptors": descriptor_names(cfg.n_mels)}


def cluster_table(table: pd.DataFrame, features: np.ndarray, valid: pd.Series, cfg: ClusterConfig
                  ) -> tuple[pd.DataFrame, dict]:
    """``cluster_label``/``cluster_mask`` from any per-segment features ``(N, D)`` (descriptors in round 1,
    encoder embeddings when re-clustering): standardised within groups, PCA, k-means. Segments not
    ``valid`` or in groups with fewer than ``min_group_size`` valid segments are masked."""
    group, keys = resolve_group(table, cfg.group, cfg.min_group_size)
    sizes = keys[valid].map(keys[valid].value_counts())
    mask = pd.Series(False, index=table.index)
    mask[sizes.index[sizes >= cfg.min_group_size]] = True
    label = np.full(len(table), -1, dtype=np.int64)
    facts = {"classes": cfg.class_names, "group": group, "k": cfg.k}
    rows = mask.to_numpy().copy()
    if rows.sum() < cfg.k:
        return (table.assign(cluster_label=label, cluster_mask=np.zeros(len(table), dtype=bool)),
                {**facts, "cluster_sizes": [], "inertia": None, "largest_share": None,
                 "warnings": [f"only {int(rows.sum())} segments to cluster, fewer than k = {cfg.k}"]})
    x = standardise_within_groups(features[rows], keys[mask].to_numpy())
    labels, _, inertia = kmeans(pca(x, cfg.pca_dim), cfg.k, cfg.seed, cfg.restarts)
    label[rows] = labels
    counts = np.bincount(labels, minlength=cfg.k)
    largest = float(counts.max() / counts.sum())
    facts.update(cluster_sizes=[int(c) for c in counts], inertia=round(inertia, 3), largest_share=round(largest, 4))
    if largest > LARGEST_CLUSTER_WARNING:
        facts["warnings"] = [f"the largest cluster holds {largest:.0%} of the segments (k = {cfg.k}): the "
                             "pseudo-classes say little; check the descriptors or lower k"]
    return table.assign(cluster_label=label, cluster_mask=rows), facts


def embed_segments(encoder_dir, table: pd.DataFrame, batch_size: int = 16) -> np.ndarray:
    """The pooled embedding of each segment by the encoder saved in ``encoder_dir`` (``save_pretrained``
    layout, e.g. a pretext run's ``RUN/encoder``): ``(N, D)`` float32, audio read with seeking."""
    from encoders import load_pretrained

    return embed_with(load_pretrained(encoder_dir).eval(), table, batch_size)


def embed_with(encoder, table: pd.DataFrame, batch_size: int = 16, device=None) -> np.ndarray:
    """The pooled embedding of each whole segment by an encoder module (in eval mode), ``(N, D)`` float32."""
    import torch

    from avpretext.common.audio import read_audio

    out = []
    with torch.no_grad():
        for lo in range(0, len(table), batch_size):
            part = table.iloc[lo:lo + batch_size]
            wavs = [read_audio(path, int(round(a * SAMPLE_RATE)), int(round(b * SAMPLE_RATE)))
                    for path, a, b in zip(part["audio_path"], part["start"], part["end"])]
            lengths = torch.tensor([len(w) for w in wavs])
            batch = torch.zeros(len(wavs), int(lengths.max()))
            for i, w in enumerate(wavs):
                batch[i, :len(w)] = w
            if device is not None:
                batch, lengths = batch.to(device), lengths.to(device)
            out.append(encoder(batch, lengths).pooled.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def recluster(encoder_dir, data, cfg: ClusterConfig | None = None, write: bool = False
              ) -> tuple[pd.DataFrame, dict]:
    """One DeepEmoCluster round: re-cluster the segments on the encoder's own pooled embeddings.

    Args:
        encoder_dir: an exported encoder (e.g. ``RUN/encoder`` of a run trained with the cluster task).
        data: a ``data_prep label`` output folder (or its segments.parquet) labelled with the cluster task.
        cfg: clustering config (default: the one in the folder's label_config.json).
        write: rewrite ``cluster_label``/``cluster_mask`` of the table in place (atomically), so the next
            pretraining round reads the new pseudo-labels.

    Returns:
        The table with new cluster labels (the same segments stay masked: ``cluster_valid`` and groups) and
        the clustering facts.
    """
    import json

    from avpretext.common.io import write_atomic
    from data_prep.segments import CONFIG_FILE, load_segments, segments_path

    table_path = segments_path(data)
    if cfg is None:
        config_file = table_path.parent / CONFIG_FILE
        saved = json.loads(config_file.read_text()).get("cluster", {}) if config_file.exists() else {}
        cfg = ClusterConfig(**saved)
    table = load_segments(table_path)
    if "cluster_valid" not in table:
        raise ValueError(f"{table_path}: no cluster columns; label with tasks including cluster first")
    valid = table["cluster_valid"].astype(bool)
    features = np.zeros((len(table), 1), dtype=np.float32)
    if valid.any():
        embedded = embed_segments(encoder_dir, table[valid])
        features = np.zeros((len(table), embedded.shape[1]), dtype=np.float32)
        features[valid.to_numpy()] = embedded
    table, facts = cluster_table(table, features, valid, cfg)
    if write:
        write_atomic(table_path, lambda tmp: table.to_parquet(tmp, index=False))
    return table, facts
