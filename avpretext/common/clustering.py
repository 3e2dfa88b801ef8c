"""Generic numeric helpers for clustering feature vectors: robust standardisation within groups, PCA,
k-means and nearest-centre assignment. NumPy only; nothing here knows about segments, tasks or encoders.

Used by the cluster pretext task (:mod:`pretext.tasks.cluster`: descriptors in the label stage, encoder
embeddings when re-clustering) and by the DeepEmoCluster loop (:mod:`pretext.deep_cluster`).

scikit-learn has a k-means, a PCA and a robust scaler, but none computes the same thing: its ``KMeans`` draws
k-means++ candidates from another random stream (greedy, several trials per centre) and numbers the clusters
arbitrarily, its ``PCA`` flips component signs, and ``RobustScaler`` neither works within groups nor falls
back to the standard deviation of a constant-IQR column. Swapping them in would silently change every
pseudo-label a seed and a table give, so the few lines stay here.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

IQR_PER_STD = 1.349  # the interquartile range of a normal distribution, in standard deviations


def standardise_within_groups(x: np.ndarray, groups: np.ndarray, clip: float) -> np.ndarray:
    """Robust z-score of each column within each group: (x - median) / (IQR / 1.349), NaN -> 0 (the group's
    typical value), clipped to ``+-clip``. ``(N, D), (N,) -> (N, D)`` float64.

    A column constant within a group (IQR 0) falls back to its standard deviation, then to 1.
    """
    out = np.zeros_like(x, dtype=np.float64)
    for key in pd.unique(groups):
        rows = groups == key
        part = x[rows].astype(np.float64)
        with warnings.catch_warnings():  # all-NaN columns (e.g. pitch of a group without voicing) are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(part, axis=0)
            q75, q25 = np.nanpercentile(part, [75, 25], axis=0)
            std = np.nanstd(part, axis=0)
        scale = (q75 - q25) / IQR_PER_STD
        scale = np.where(scale > 1e-6, scale, np.where(std > 1e-6, std, 1.0))
        scale = np.nan_to_num(scale, nan=1.0)
        out[rows] = np.nan_to_num((part - np.nan_to_num(median)) / scale, nan=0.0)
    return np.clip(out, -clip, clip)


def pca(x: np.ndarray, dim: int) -> np.ndarray:
    """Projection of centred ``x (N, D)`` on its first ``dim`` principal components ``-> (N, min(dim, D, N))``;
    ``dim = 0`` returns ``x`` centred. Deterministic (SVD; a component's sign does not change distances)."""
    centred = x - x.mean(0)
    if dim == 0:
        return centred
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:dim].T


def squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of every point to every centre: ``(N, D), (k, D) -> (N, k)``.

    Expanded as |x|^2 - 2 x.c + |c|^2, so no (N, k, D) intermediate is built for millions of points.
    """
    return (x ** 2).sum(1)[:, None] - 2 * x @ centres.T + (centres ** 2).sum(1)[None]


def nearest_centres(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of each point's nearest centre: ``(N, D), (k, D) -> (N,)`` int64 (ties: the lower index)."""
    return squared_distances(x, centres).argmin(1)


def kmeans(x: np.ndarray, k: int, seed: int, restarts: int, iterations: int = 100
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means (k-means++ initialisation, Lloyd iterations), best of ``restarts`` by inertia.

    Args:
        x: (N, D) points, N >= k.

    Returns:
        (labels (N,) int64, centres (k, D), inertia = summed squared distance to the assigned centre). Clusters
        are numbered by decreasing size (ties: by first centre coordinate), so cluster 0 is the largest and the
        numbering does not depend on which restart won. An emptied cluster is re-seeded at the point furthest
        from its centre.
    """
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(restarts):
        centres = _kmeans_pp(x, k, rng)
        labels = None
        for _ in range(iterations):
            distances = squared_distances(x, centres)
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
