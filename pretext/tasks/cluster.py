"""Acoustic-cluster pretext task: which of k acoustic pseudo-classes does a segment's speech fall in?

DeepEmoCluster [0] trains an emotion network end to end on mel-spectrograms with k-means pseudo-classes of its
own representations (DeepCluster [1] applied to speech emotion: cluster, predict the cluster index, re-cluster
as training goes), alongside a supervised emotional-attribute regressor on the labelled part (semi-supervised).
Unlike the face tasks it needs audio alone, so it scales with any unlabelled speech. The label stage makes
round 0 from hand-made descriptors of each segment's speech frames (:mod:`pretext.tasks.cluster_descriptors`);
pretraining's ``--recluster-every`` (:mod:`pretext.deep_cluster`) runs the loop on the encoder's own
embeddings, and :func:`pretext.recluster.recluster` one round on an exported encoder. Both cluster with
:func:`cluster_table`.

Recordings differ by 18-20 dB in level and by their channel (measured on real corpora, see
:mod:`pretext.tasks.energy`), so raw descriptors would cluster by recording. Each descriptor is therefore
robustly standardised within its group (speaker, else video: :func:`~pretext.tasks.labelling.resolve_group`)
before PCA and k-means: a cluster says how a segment differs from its speaker's usual voice.

[0] W.-C. Lin, K. Sridhar and C. Busso, "DeepEmoCluster: a semi-supervised framework for latent cluster
    representation of speech emotions", ICASSP 2021.
[1] M. Caron et al., "Deep clustering for unsupervised learning of visual features", ECCV 2018.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import soundfile as sf

from avpretext.common.clustering import kmeans, pca, standardise_within_groups
from data_prep.decode import SAMPLE_RATE

from .base import ClassificationTask
from .labelling import GROUP_CHOICES, frames_in, resolve_group
from .cluster_descriptors import descriptor_columns, descriptor_names, read_frames, segment_descriptor

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


class ClusterTask(ClassificationTask):
    name = "cluster"
    Config = ClusterConfig
    classes = ()  # from the config: c0..c{k-1} (ClusterConfig.class_names)

    def num_classes(self, cfg: ClusterConfig) -> int:
        return cfg.k

    def segment_values(self, media, segments, cfg: ClusterConfig, context=None) -> list[dict]:
        """Per segment: ``cluster_d000..`` (float32 descriptor of its speech frames,
        :func:`~pretext.tasks.cluster_descriptors.descriptor_names`),
        ``cluster_speech_fraction`` and ``cluster_valid`` (speech fraction >= ``min_speech_fraction``).

        The audio of each segment's speech span is read from ``media.audio_path`` with seeking (16 kHz mono,
        as extraction writes it), so hour-long recordings never sit in memory.
        """
        columns = descriptor_columns(cfg.n_mels)
        empty = {**{c: np.float32(np.nan) for c in columns}, "cluster_speech_fraction": 0.0, "cluster_valid": False}
        if media.audio_path is None or len(media.energy) == 0:
            return [dict(empty) for _ in segments]
        energy = np.asarray(media.energy)
        times = np.arange(len(energy)) / media.energy_rate
        hop = int(round(SAMPLE_RATE / media.energy_rate))  # samples between energy frames
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
                descriptor = segment_descriptor(read_frames(audio, index, hop), energy[index], cfg.n_mels)
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
    """``cluster_label``/``cluster_mask`` from any per-segment features ``(N, D)`` (descriptors in round 0,
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
    x = standardise_within_groups(features[rows], keys[mask].to_numpy(), NORM_CLIP)
    labels, _, inertia = kmeans(pca(x, cfg.pca_dim), cfg.k, cfg.seed, cfg.restarts)
    label[rows] = labels
    counts = np.bincount(labels, minlength=cfg.k)
    largest = float(counts.max() / counts.sum())
    facts.update(cluster_sizes=[int(c) for c in counts], inertia=round(inertia, 3), largest_share=round(largest, 4))
    if largest > LARGEST_CLUSTER_WARNING:
        facts["warnings"] = [f"the largest cluster holds {largest:.0%} of the segments (k = {cfg.k}): the "
                             "pseudo-classes say little; check the descriptors or lower k"]
    return table.assign(cluster_label=label, cluster_mask=rows), facts
