"""Scores of the generic task kinds from sums that processes add up: accuracy and UAR from a confusion, Pearson's
r and the CCC from correlation sums."""
from __future__ import annotations

import numpy as np

from avpretext.common.metrics import metrics_from_confusion

# torch is imported inside the functions below: it is heavy (seconds) and the label stage, which imports every
# task, never needs it.


def summarize_counts(confusion) -> dict:
    """Accuracy, UAR and item count from a summed confusion (rows = targets, as
    :meth:`pretext.tasks.base.ClassificationTask.metric_counts` gives it), scored by
    :func:`avpretext.common.metrics.metrics_from_confusion` (NaN when nothing was labelled)."""
    counts = np.rint(np.asarray(confusion.cpu() if hasattr(confusion, "cpu") else confusion)).astype(np.int64)
    scores = metrics_from_confusion(counts, [str(i) for i in range(len(counts))])
    return {"acc": scores["accuracy"], "uar": scores["uar"], "n": scores["count"]}


# Sums per target dimension that Pearson's r and the CCC follow from, added up over batches and processes.
CORRELATION_SUMS = ("n", "sum_p", "sum_t", "sum_pp", "sum_tt", "sum_pt")


def correlation_sums(pred, target):
    """(D, 6) float64 :data:`CORRELATION_SUMS` of predictions and targets over their finite entries.

    pred, target: (N, D), NaN in ``target`` where a value does not exist.
    """
    import torch

    pred, target = pred.detach(), target.detach()
    valid = torch.isfinite(target)
    p = torch.where(valid, pred.double(), torch.zeros((), dtype=torch.float64, device=pred.device))
    t = torch.where(valid, target.double(), torch.zeros((), dtype=torch.float64, device=pred.device))
    n = valid.double()
    return torch.stack([n.sum(0), p.sum(0), t.sum(0), (p * p).sum(0), (t * t).sum(0), (p * t).sum(0)], dim=1)


def correlation_scores(sums, names: list[str]) -> dict:
    """Pearson's r and the CCC per dimension (``r/<name>``) and their means over dimensions (``r_mean``,
    ``ccc_mean``; NaN for a dimension without two values), and ``n`` (target values scored)."""
    s = np.asarray(sums.cpu() if hasattr(sums, "cpu") else sums, dtype=np.float64)
    n = np.maximum(s[:, 0], 1.0)
    mean_p, mean_t = s[:, 1] / n, s[:, 2] / n
    var_p, var_t = s[:, 3] / n - mean_p ** 2, s[:, 4] / n - mean_t ** 2
    cov = s[:, 5] / n - mean_p * mean_t
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where((s[:, 0] > 1) & (var_p > 0) & (var_t > 0), cov / np.sqrt(var_p * var_t), np.nan)
        ccc = np.where(s[:, 0] > 1, 2 * cov / (var_p + var_t + (mean_p - mean_t) ** 2), np.nan)
    scores = {"r_mean": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
              "ccc_mean": float(np.nanmean(ccc)) if np.isfinite(ccc).any() else float("nan"),
              "n": int(s[:, 0].sum())}
    return scores | {f"r/{name}": float(value) for name, value in zip(names, r)}
