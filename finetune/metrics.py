"""SER metrics: accuracy (WA), UAR, macro precision/recall/F1, per-class scores, confusion; CCC.

Plain numpy so that the numbers are easy to audit. Conventions follow scikit-learn's ``zero_division=0``:
a class never predicted has precision 0; a class absent from the references is left out of the macro
averages (it has no recall to average).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int counts; rows are references, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def classification_metrics(y_true, y_pred, class_names: list[str]) -> dict:
    """Scores of predicted class indices against references.

    Returns:
        dict with accuracy (weighted accuracy, WA), uar (unweighted average recall = balanced accuracy),
        macro_f1, macro_precision, macro_recall, per_class {name: {precision, recall, f1, support}},
        confusion (list of lists, rows = references), class_names, count.
    """
    confusion = confusion_matrix(y_true, y_pred, len(class_names))
    return metrics_from_confusion(confusion, class_names)


def metrics_from_confusion(confusion: np.ndarray, class_names: list[str]) -> dict:
    """The scores of :func:`classification_metrics` from a confusion matrix (e.g. summed over folds)."""
    confusion = np.asarray(confusion, dtype=np.int64)
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    hits = np.diag(confusion)
    recall = np.divide(hits, support, out=np.zeros(len(hits)), where=support > 0)
    precision = np.divide(hits, predicted, out=np.zeros(len(hits)), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(hits)),
                   where=(precision + recall) > 0)
    present = support > 0
    total = int(confusion.sum())
    return {
        "accuracy": float(hits.sum() / max(total, 1)),
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(class_names, precision, recall, f1, support)},
        "confusion": confusion.tolist(),
        "class_names": list(class_names),
        "count": total,
    }


def ccc(x, y) -> float:
    """Lin's concordance correlation coefficient of two 1-D arrays (the dimensional-SER metric)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    covariance = ((x - x.mean()) * (y - y.mean())).mean()
    denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    return float(2 * covariance / denominator) if denominator > 0 else 0.0


def plot_confusion(confusion, class_names: list[str], path: str | Path, title: str = "") -> Path:
    """Save a row-normalised confusion matrix (counts annotated) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion, dtype=np.float64)
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    size = 1.6 + 0.55 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{int(confusion[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="share of the reference class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
