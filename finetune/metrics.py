"""SER metrics of fine-tuning: the scores come from :mod:`avpretext.common.metrics` (scikit-learn, one
implementation for every stage, NaN on empty input); this module adds the split score of model outputs and the
confusion plot."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avpretext.common.metrics import ccc, classification_metrics, confusion_matrix, metrics_from_confusion
from avpretext.common.plots import pyplot, save_figure

if TYPE_CHECKING:
    from finetune.data import Targets

__all__ = ["ccc", "classification_metrics", "confusion_matrix", "metrics_from_confusion", "plot_confusion", "score"]


def plot_confusion(confusion, class_names: list[str], path: str | Path, title: str = "") -> Path:
    """Save a row-normalised confusion matrix (counts annotated) as PNG."""
    plt = pyplot()

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
    return save_figure(fig, path)


def score(outputs: np.ndarray, references: dict[str, np.ndarray], masks: dict[str, np.ndarray],
          targets: "Targets") -> dict:
    """Test/dev scores. Categorical: :func:`classification_metrics`; dimensional: CCC per dimension and mean
    (``uar`` then holds the mean CCC so that model selection reads one key)."""
    if targets.categorical:
        return classification_metrics(references["emotion"], outputs.argmax(1), targets.class_names)
    per_dim = {d: ccc(outputs[masks[d], i], references[d][masks[d]]) for i, d in enumerate(targets.dimensions)}
    mean = float(np.mean(list(per_dim.values())))
    return {"ccc": per_dim, "mean_ccc": mean, "uar": mean, "count": int(len(outputs))}
