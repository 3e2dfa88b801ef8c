"""Model selection on the dev speakers: which epoch's weights a split keeps, and when training stops.

A rule (``FinetuneConfig.selection``) scores each epoch from its dev evaluation, smoothed over the last
``smooth`` epochs, and keeps the best-scoring epoch:

- ``smoothed_uar``: mean dev UAR (mean CCC for dimensional targets) over the window; the first epochs average
  fewer evaluations, so one lucky early epoch on a few dev clips can win;
- ``full_window_uar``: the same, but an epoch is a candidate only once its window holds ``smooth``
  evaluations (or every epoch there will be, when ``epochs < smooth``);
- ``dev_loss``: the lowest mean dev loss over the window (cross-entropy of the classes, or 1 - CCC per
  dimension): it moves with every dev clip's probability, not only with the clips that change class.

Training stops when ``patience`` epochs have passed since the best candidate (counted from the first
candidate epoch when none has been seen yet).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from finetune.config import SELECTIONS
from finetune.data import Targets
from finetune.losses import compute_loss


def check_selection(config) -> None:
    """ValueError naming the option when the selection settings cannot work."""
    if config.selection not in SELECTIONS:
        raise ValueError(f"--selection {config.selection!r}: choose from {', '.join(SELECTIONS)}")
    if config.smooth < 1:
        raise ValueError(f"--smooth {config.smooth}: at least 1 (1: no smoothing)")
    if config.patience < 1:
        raise ValueError(f"--patience {config.patience}: at least 1")


def dev_loss(outputs: np.ndarray, labels: dict[str, np.ndarray], masks: dict[str, np.ndarray], targets: Targets,
             class_weight=None) -> float:
    """The training objective on gathered dev outputs (B, num_outputs): cross-entropy, or mean 1 - CCC."""
    batch = {"labels": {t: torch.from_numpy(v) for t, v in labels.items()},
             "masks": {t: torch.from_numpy(v) for t, v in masks.items()}}
    weight = None if class_weight is None else class_weight.detach().cpu().float()
    return float(compute_loss(torch.from_numpy(outputs).float(), batch, targets, weight))


class Selector:
    """Tracks the dev history of one split and says which epochs improve on the best so far.

    ``update(dev_uar, dev_loss)`` once per epoch returns ``(smoothed score, improved)``; the score is
    oriented so that larger is better (the negated loss under ``dev_loss``), NaN for an epoch that is not a
    candidate.
    """

    def __init__(self, rule: str, smooth: int, patience: int, epochs: int):
        if rule not in SELECTIONS:
            raise ValueError(f"selection {rule!r}: choose from {', '.join(SELECTIONS)}")
        self.rule, self.smooth, self.patience = rule, smooth, patience
        self.full_window = min(smooth, epochs) if rule == "full_window_uar" else 1
        self.values: list[float] = []
        self.best_score, self.best_epoch, self.first_candidate = -math.inf, 0, 0

    def update(self, dev_uar: float, loss: float) -> tuple[float, bool]:
        self.values.append(-loss if self.rule == "dev_loss" else dev_uar)
        epoch = len(self.values)
        if epoch < self.full_window:
            return float("nan"), False
        self.first_candidate = self.first_candidate or epoch
        smoothed = float(np.mean(self.values[-self.smooth:]))
        improved = smoothed > self.best_score
        if improved:
            self.best_score, self.best_epoch = smoothed, epoch
        return smoothed, improved

    def should_stop(self) -> bool:
        """True once ``patience`` epochs have passed without a better candidate."""
        reference = self.best_epoch or (self.first_candidate - 1 if self.first_candidate else 0)
        return len(self.values) - reference >= self.patience if self.first_candidate else False



class SelectionTracker:
    """The selection of a training run: ``config.selection``'s :class:`Selector`, and with
    ``config.compare_selections`` one for every rule, each updated until it would have stopped its own run.

    ``update`` keeps a copy of the weights of every epoch that is some rule's best so far (``states``);
    ``should_stop`` is True once every rule has stopped; ``test_scores`` scores the epoch each rule keeps.
    """

    def __init__(self, config):
        rules = SELECTIONS if config.compare_selections else (config.selection,)
        self.main = config.selection
        self.selectors = {rule: Selector(rule, config.smooth, config.patience, config.epochs) for rule in rules}
        self.states: dict[int, dict] = {}

    def update(self, dev_uar: float, loss: float, model) -> tuple[float, bool]:
        """Feed one epoch's dev scores to every rule still running; (smoothed, improved) of the main rule."""
        outcome, any_improved = (float("nan"), False), False
        for rule, selector in self.selectors.items():
            if selector.should_stop():
                continue
            smoothed, improved = selector.update(dev_uar, loss)
            outcome = (smoothed, improved) if rule == self.main else outcome
            any_improved |= improved
        epoch = max(len(s.values) for s in self.selectors.values())
        if any_improved:
            self.states[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        kept = {s.best_epoch for s in self.selectors.values()}
        self.states = {e: state for e, state in self.states.items() if e in kept}
        return outcome

    def should_stop(self) -> bool:
        return all(s.should_stop() for s in self.selectors.values())

    def test_scores(self, score_state) -> dict:
        """{rule: {best_epoch, epochs_run, test}} for every rule, ``score_state(weights) -> scores`` called once
        per distinct epoch; empty unless rules are compared."""
        if len(self.selectors) == 1:
            return {}
        scores = {e: score_state(self.states[e]) for e in sorted({s.best_epoch for s in self.selectors.values()})
                  if e in self.states}
        return {rule: {"best_epoch": s.best_epoch, "epochs_run": len(s.values), "test": scores.get(s.best_epoch)}
                for rule, s in self.selectors.items()}
