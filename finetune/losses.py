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
    """The emotion loss over the items whose emotion is labelled (``masks``; unlabelled items of a
    semi-supervised batch, :mod:`finetune.auxiliary`, add nothing). outputs: (B, num_outputs)."""
    if targets.categorical:
        mask = batch["masks"]["emotion"]
        if not mask.any():
            return outputs.sum() * 0  # keeps the graph (and DDP's gradient hooks) connected
        return nn.functional.cross_entropy(outputs[mask], batch["labels"]["emotion"][mask], weight=class_weight)
    return sum(ccc_loss(outputs[:, i], batch["labels"][d], batch["masks"][d])
               for i, d in enumerate(targets.dimensions)) / len(targets.dimensions)


MIXUP_INPUTS = ("waveform", "log_mel")


def check_mixup(config, encoder=None) -> None:
    """ValueError naming the option when the mixup settings cannot work (with ``encoder``: for that encoder)."""
    if config.mixup_alpha < 0:
        raise ValueError(f"--mixup-alpha {config.mixup_alpha}: must be >= 0 (0: off)")
    if config.mixup_input not in MIXUP_INPUTS:
        raise ValueError(f"--mixup-input {config.mixup_input!r}: choose from {', '.join(MIXUP_INPUTS)}")
    if config.mixup_input == "waveform" or not config.mixup_alpha:
        return
    if config.mode != "finetune":
        raise ValueError("--mixup-input log_mel needs --mode finetune (the probe mixes its cached embeddings)")
    if config.chunk_seconds:
        raise ValueError("--mixup-input log_mel cannot be combined with --chunk-seconds (two utterances' chunks do "
                         "not line up); mix waveforms instead")
    if encoder is not None and encoder.input_domain != "log_mel":
        raise ValueError(f"--mixup-input log_mel: the {encoder.name} encoder has no log-mel front end (its input "
                         f"is the {encoder.input_domain}); use --mixup-input waveform")


def mix_padded(x: torch.Tensor, lengths: torch.Tensor, lam: float, perm: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``lam * x + (1 - lam) * x[perm]`` over the batch (dim 0) and the longer length of each pair.

    x: (B, ...) padded inputs whose padding is silence (zeros of a waveform, the floor of a log-mel), so the
    shorter of two items simply ends; lengths: (B,).
    """
    return lam * x + (1 - lam) * x[perm], torch.maximum(lengths, lengths[perm])


def mix_batch(batch: dict, lam: float, perm: torch.Tensor) -> dict:
    """Mixup of the model input: ``lam * x + (1 - lam) * x[perm]``.

    Args:
        batch: audio (``wavs`` (B, T) zero-padded, ``lengths`` (B,)) or probe ``embeddings`` (B, D).
        lam: the mixing weight of the batch's own items.
        perm: (B,) partner of each item.

    Returns:
        A new batch; a mixed waveform is as long as the longer of its two (:func:`mix_padded`). Labels are left
        alone: :func:`mixup_loss` mixes the targets. (Log-mel inputs are mixed inside the model:
        :meth:`finetune.model.SERModel.embed`.)
    """
    mixed = dict(batch)
    if "embeddings" in batch:
        mixed["embeddings"] = lam * batch["embeddings"] + (1 - lam) * batch["embeddings"][perm]
    else:
        mixed["wavs"], mixed["lengths"] = mix_padded(batch["wavs"], batch["lengths"], lam, perm)
    return mixed


def mixup_loss(outputs: torch.Tensor, batch: dict, lam: float, perm: torch.Tensor, targets: Targets,
               class_weight) -> torch.Tensor:
    """The loss against mixed targets. Classes: ``lam * CE(y) + (1 - lam) * CE(y[perm])``, which is the
    cross-entropy against the soft target ``lam * onehot(y) + (1 - lam) * onehot(y[perm])``. Dimensions: CCC
    against ``lam * t + (1 - lam) * t[perm]``. Either way over the items labelled on both sides."""
    if targets.categorical:
        both = {"emotion": batch["masks"]["emotion"] & batch["masks"]["emotion"][perm]}  # labelled pairs only
        own = {**batch, "masks": both}
        partner = {**batch, "labels": {"emotion": batch["labels"]["emotion"][perm]}, "masks": both}
        return (lam * compute_loss(outputs, own, targets, class_weight)
                + (1 - lam) * compute_loss(outputs, partner, targets, class_weight))
    labels = {d: lam * batch["labels"][d] + (1 - lam) * batch["labels"][d][perm] for d in targets.dimensions}
    masks = {d: batch["masks"][d] & batch["masks"][d][perm] for d in targets.dimensions}
    return compute_loss(outputs, {**batch, "labels": labels, "masks": masks}, targets, class_weight)
