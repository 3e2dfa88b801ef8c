"""Segments embedded by an encoder, and one DeepEmoCluster round on an exported encoder.

The cluster task's round 0 clusters hand-made descriptors (:mod:`pretext.tasks.cluster`); the next rounds
cluster the encoder's own pooled embeddings of whole segments with the same settings
(:func:`pretext.tasks.cluster.cluster_table`). :func:`recluster` runs one such round on an exported encoder
and can rewrite a labelled folder's pseudo-labels for the next pretraining run; :mod:`pretext.deep_cluster`
runs the rounds inside pretraining with :func:`embed_with`.

Example::

    from pretext.recluster import recluster
    table, facts = recluster("RUN/encoder", "LABELS", write=True)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avpretext.common.audio import SAMPLE_RATE, read_audio
from avpretext.common.io import write_atomic
from data_prep.segments import LABEL_CONFIG_FILE, load_segments, segments_path
from encoders import load_pretrained
from pretext.tasks.cluster import ClusterConfig, cluster_table


def embed_segments(encoder_dir: str | Path, table: pd.DataFrame, batch_size: int = 16) -> np.ndarray:
    """The pooled embedding of each segment by the encoder saved in ``encoder_dir`` (``save_pretrained``
    layout, e.g. a pretext run's ``RUN/encoder``): ``(N, D)`` float32, audio read with seeking."""
    return embed_with(load_pretrained(encoder_dir).eval(), table, batch_size)


def embed_with(encoder: torch.nn.Module, table: pd.DataFrame, batch_size: int = 16, device=None) -> np.ndarray:
    """The pooled embedding of each whole segment (``audio_path``, ``start``, ``end`` in s) by an encoder
    module in eval mode: ``(N, D)`` float32, ``(0, 0)`` for no segment."""
    out = []
    with torch.no_grad():
        for lo in range(0, len(table), batch_size):
            part = table.iloc[lo:lo + batch_size]
            wavs = [read_audio(path, int(round(a * SAMPLE_RATE)), int(round(b * SAMPLE_RATE)))
                    for path, a, b in zip(part["audio_path"], part["start"], part["end"])]
            lengths = torch.tensor([len(w) for w in wavs])
            batch = torch.zeros(len(wavs), int(lengths.max()))  # (B, T) zero-padded
            for i, w in enumerate(wavs):
                batch[i, :len(w)] = w
            if device is not None:
                batch, lengths = batch.to(device), lengths.to(device)
            out.append(encoder(batch, lengths).pooled.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def recluster(encoder_dir: str | Path, data: str | Path, cfg: ClusterConfig | None = None, write: bool = False
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
    table_path = segments_path(data)
    if cfg is None:
        config_file = table_path.parent / LABEL_CONFIG_FILE
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
