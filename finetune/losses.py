"""Fine-tuning objectives: cross-entropy for classes, 1 - CCC per dimension for dimensional targets."""
from __future__ import annotations

import torch
from torch import nn

from avpretext.common.metrics import concordance
from finetune.data import Targets


def ccc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - CCC over the labelled items of one dimension. pred, target: (B,), mask: (B,) bool."""
    p, t = pred[mask], target[mask]
    if len(p) < 2:
        return pred.sum() * 0
    return 1 - concordance(p, t, eps=1e-8)


def compute_loss(outputs: torch.Tensor, batch: dict, targets: Targets, class_weight) -> torch.Tensor:
    if targets.categorical:
        return nn.functional.cross_entropy(outputs, batch["labels"]["emotion"], weight=class_weight)
    return sum(ccc_loss(outputs[:, i], batch["labels"][d], batch["masks"][d])
               for i, d in enumerate(targets.dimensions)) / len(targets.dimensions)
