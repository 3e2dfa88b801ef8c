"""Model selection rules (finetune.selection): which epoch a split keeps, when it stops, and the traced run that
compares rules on one training run per cell."""
from __future__ import annotations

import json

import pytest

from finetune.config import FinetuneConfig
from finetune.selection import Selector
from finetune.train import run
from tests.finetune.test_finetune import _config


def _replay(uars, rule, smooth, patience, epochs, losses=None) -> tuple[int, int]:
    """(selected epoch, epochs run) of ``rule`` on these dev scores, stopping as training does."""
    selector = Selector(rule, smooth, patience, epochs)
    for uar, loss in zip(uars, losses or [1.0] * len(uars)):
        selector.update(uar, loss)
        if selector.should_stop():
            break
    return selector.best_epoch, len(selector.values)


def test_a_lucky_first_epoch_wins_the_smoothed_rule_but_not_the_full_window():
    uars = [0.40, 0.20, 0.25, 0.30, 0.33, 0.35, 0.30]
    assert _replay(uars, "smoothed_uar", 3, 8, 20) == (1, 7)
    assert _replay(uars, "full_window_uar", 3, 8, 20)[0] == 6  # mean of 0.33, 0.35, 0.30 is the best


def test_dev_loss_selects_the_lowest_smoothed_loss_and_patience_stops_after_it():
    losses = [2.0, 1.8, 1.5, 1.4, 1.6, 1.7, 1.9, 2.0, 2.1]
    assert _replay([0.5] * 9, "dev_loss", 1, 3, 20, losses) == (4, 7)


def test_full_window_waits_for_a_full_window_and_counts_patience_from_there():
    selector = Selector("full_window_uar", 3, 2, 20)
    assert selector.update(0.9, 1.0) == (pytest.approx(float("nan"), nan_ok=True), False)
    selector.update(0.1, 1.0)
    assert not selector.should_stop()  # two epochs, but none was a candidate yet
    assert selector.update(0.2, 1.0)[1]  # epoch 3: the first full window
    # With fewer epochs than the window, the last epoch is still a candidate.
    short = Selector("full_window_uar", 3, 8, 2)
    short.update(0.5, 1.0)
    assert short.update(0.4, 1.0)[1]


def test_unknown_rule_is_refused_before_training(manifest, tmp_path):
    with pytest.raises(ValueError, match="--selection"):
        run(_config(manifest, tmp_path / "x", selection="best"))


@pytest.mark.slow
def test_one_run_comparing_the_rules_gives_each_rule_what_its_own_run_gives(manifest, tmp_path):
    """``compare_selections``: one run trains until every rule has stopped and scores each rule's epoch; each
    rule's own run (early stopping included, loader workers included) keeps the same epoch, stops at the same
    epoch, and scores the same on the test speakers."""
    common = dict(epochs=4, fold="0", num_workers=1, smooth=2, patience=1)
    run(_config(manifest, tmp_path / "compared", compare_selections=True, **common))
    compared = json.loads((tmp_path / "compared" / "fold0" / "metrics.json").read_text())
    assert set(compared["selections"]) == {"smoothed_uar", "full_window_uar", "dev_loss"}
    assert compared["best_epoch"] == compared["selections"]["smoothed_uar"]["best_epoch"]  # the default keeps its
    for rule, chosen in compared["selections"].items():
        run(_config(manifest, tmp_path / rule, selection=rule, **common))
        own = json.loads((tmp_path / rule / "fold0" / "metrics.json").read_text())
        assert (chosen["best_epoch"], chosen["epochs_run"]) == (own["best_epoch"], own["epochs_run"]), rule
        assert chosen["test"]["confusion"] == own["test"]["confusion"], rule
    assert FinetuneConfig().selection == "smoothed_uar"  # the default rule
