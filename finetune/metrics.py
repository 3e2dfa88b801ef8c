"""SER metrics of fine-tuning: the scores come from :mod:`avpretext.common.metrics` (scikit-learn, one
implementation for every stage, NaN on empty input); this module adds the confusion plot."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avpretext.common.metrics import ccc, classification_metrics, confusion_matrix, metrics_from_confusion

__all__ = ["ccc", "classification_metrics", "confusion_matrix", "metrics_from_confusion", "plot_confusion"]


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
