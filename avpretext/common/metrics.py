"""The one implementation of the scores every stage reports, delegated to scikit-learn.

Used by pretext training (per-task accuracy/UAR), fine-tuning (WA, UAR, macro F1, confusion; CCC) and the
label audit (ROC AUC). Conventions:

* UAR is the mean recall over the classes present in the references (scikit-learn's balanced accuracy);
  macro precision/recall/F1 average over those classes too, with ``zero_division=0`` (a class never
  predicted has precision 0).
* **Empty input** (no item scored): every score is NaN and ``count`` is 0. NaN says "no score"; 0.0 would
  read as a real, terrible one. AUC is NaN when one side (positives or negatives) is empty; CCC is NaN for
  fewer than two items and 0 when both series are constant.
"""
from __future__ import annotations

import numpy as np


def _sklearn_metrics():
    # scikit-learn takes seconds to import; commands that never score (data_prep --help, extract, label) import
    # this module through the audit and the face-emotion fit, so it is loaded on the first score instead.
    from sklearn import metrics

    return metrics


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; rows are references, columns predictions, classes ``0..C-1``."""
    if len(y_true) == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    return _sklearn_metrics().confusion_matrix(np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64),
                               labels=np.arange(num_classes)).astype(np.int64)


def classification_metrics(y_true, y_pred, class_names: list[str]) -> dict:
    """Scores of predicted class indices against references.

    Returns:
        dict with accuracy (weighted accuracy, WA), uar (unweighted average recall = balanced accuracy),
        macro_f1, macro_precision, macro_recall, per_class {name: {precision, recall, f1, support}},
        confusion (list of lists, rows = references), class_names, count.
    """
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(class_names)), class_names)


def metrics_from_confusion(confusion, class_names: list[str]) -> dict:
    """The scores of :func:`classification_metrics` from a confusion matrix (e.g. summed over folds or
    across processes): the matrix is expanded back to its (reference, prediction) pairs for scikit-learn."""
    confusion = np.asarray(confusion, dtype=np.int64)
    rows, cols = np.indices(confusion.shape)
    y_true = np.repeat(rows.ravel(), confusion.ravel())
    y_pred = np.repeat(cols.ravel(), confusion.ravel())
    labels = np.arange(len(class_names))
    support = confusion.sum(1)
    if len(y_true):
        precision, recall, f1, _ = _sklearn_metrics().precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=0)
        # Macro averages over the classes present in the references (scikit-learn's average="macro" with
        # labels=present, taken from the per-class scores instead of a second pass); the macro recall is the UAR
        # (= balanced_accuracy_score, without its warning when a prediction names an absent class).
        present = support > 0
        scores = {"accuracy": float(_sklearn_metrics().accuracy_score(y_true, y_pred)),
                  "uar": float(recall[present].mean()),
                  "macro_f1": float(f1[present].mean()), "macro_precision": float(precision[present].mean()),
                  "macro_recall": float(recall[present].mean())}
    else:
        precision = recall = f1 = np.zeros(len(labels))
        scores = dict.fromkeys(("accuracy", "uar", "macro_f1", "macro_precision", "macro_recall"), float("nan"))
    return {
        **scores,
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(class_names, precision, recall, f1, support)},
        "confusion": confusion.tolist(),
        "class_names": list(class_names),
        "count": int(confusion.sum()),
    }


def concordance(x, y, eps: float = 0.0):
    """Lin's concordance correlation coefficient of two (N,) torch tensors, population moments:
    2 cov(x, y) / (var x + var y + (mean x - mean y)^2 + eps). Differentiable: the fine-tuning CCC loss is
    ``1 - concordance(pred, target, 1e-8)``; :func:`ccc` is the same formula as a score. (scikit-learn has no
    CCC, and one formula serves both.)"""
    covariance = ((x - x.mean()) * (y - y.mean())).mean()
    return 2 * covariance / (x.var(unbiased=False) + y.var(unbiased=False) + (x.mean() - y.mean()) ** 2 + eps)


def ccc(x, y) -> float:
    """:func:`concordance` of two 1-D arrays as a float (the dimensional-SER score); NaN for fewer than two
    items, 0 when both are constant."""
    import torch  # heavy: the common layer loads it only where used

    x, y = torch.as_tensor(np.asarray(x, dtype=np.float64)), torch.as_tensor(np.asarray(y, dtype=np.float64))
    if len(x) < 2:
        return float("nan")
    value = concordance(x, y)
    return float(value) if torch.isfinite(value) else 0.0


def roc_auc(score, positive) -> float:
    """Area under the ROC curve of ``score`` for the boolean ``positive`` (ties count half); NaN when either
    class is absent."""
    score, positive = np.asarray(score, dtype=np.float64), np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(_sklearn_metrics().roc_auc_score(positive, score))
