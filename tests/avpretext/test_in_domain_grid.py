"""experiments.in_domain_grid's report: the in-domain arm against its pool-only twin, matched cell for cell,
each against the shared scratch cells and eGeMAPS."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from experiments.in_domain_grid import method_name, parse_variant, report


def _cell(mode, init, arm, fold, uar, seed=0):
    return {"mode": mode, "init": init, "fraction": 0.1, "fold": fold, "seed": seed, "uar": uar,
            "macro_f1": uar, "accuracy": uar, "arm": arm,
            "method": method_name(arm, init, mode, "energy,cluster")}


def test_in_domain_minus_pool_only_pairs_pretrained_cells_and_names_methods():
    rows = []
    for i, fold in enumerate(("fold0", "fold1", "fold2")):
        rows += [_cell("finetune", "pretrained", "pool_only", fold, 0.30),
                 _cell("finetune", "pretrained", "in_domain", fold, 0.32 + 0.01 * i),
                 _cell("finetune", "scratch", "in_domain", fold, 0.31),
                 _cell("egemaps", "logreg", "none", fold, 0.37)]
    # An in-domain cell without its pool-only twin (another seed) must not enter the paired difference.
    rows.append(_cell("finetune", "pretrained", "in_domain", "fold0", 0.93, seed=1))
    text = report(pd.DataFrame(rows), "energy,cluster")
    assert "| in-domain - pool-only | finetune | 10% | 3 | +3.0 |" in text  # (2 + 3 + 4) / 3
    assert "| pool_only - scratch | finetune | 10% | 3 | -1.0 |" in text
    assert "| pretrained-energy,cluster+in-domain | finetune | 10% | 4 | 48.0 |" in text  # (32 + 33 + 34 + 93) / 4
    assert "| pretrained-energy,cluster - eGeMAPS | finetune | 10% | 3 | -7.0 |" in text
    assert "| scratch-cnn-in-domain-grid - eGeMAPS | finetune | 10% | 3 | -6.0 |" in text
    assert method_name("none", "logreg", "egemaps", "energy,cluster") == "egemaps"


def test_a_named_grid_keeps_its_methods_apart_from_another_grids():
    """--name: every neural method carries it (the baseline summary pools rows by method name), eGeMAPS not."""
    names = {method_name(arm, init, "finetune", "energy,cluster", "second-stage")
             for arm, init in (("in_domain", "pretrained"), ("pool_only", "pretrained"), ("in_domain", "scratch"))}
    assert names == {"pretrained-energy,cluster+in-domain-second-stage", "pretrained-energy,cluster-second-stage",
                     "scratch-cnn-in-domain-grid-second-stage"}
    assert not names & {method_name(arm, init, "finetune", "energy,cluster")
                        for arm, init in (("in_domain", "pretrained"), ("pool_only", "pretrained"),
                                          ("in_domain", "scratch"))}
    assert method_name("none", "logreg", "egemaps", "energy,cluster", "second-stage") == "egemaps"


def test_a_variant_arm_is_paired_with_the_pool_only_twin_the_in_domain_arm_and_scratch():
    rows = []
    for i, fold in enumerate(("fold0", "fold1", "fold2")):
        rows += [_cell("finetune", "pretrained", "pool_only", fold, 0.30),
                 _cell("finetune", "pretrained", "in_domain", fold, 0.32),
                 _cell("finetune", "pretrained", "acoustic", fold, 0.35 + 0.01 * i),
                 _cell("finetune", "scratch", "in_domain", fold, 0.31)]
    text = report(pd.DataFrame(rows), "energy,cluster")
    assert "| acoustic - pool-only | finetune | 10% | 3 | +6.0 |" in text
    assert "| acoustic - in-domain | finetune | 10% | 3 | +4.0 |" in text
    assert "| acoustic - scratch | finetune | 10% | 3 | +5.0 |" in text
    assert "| pretrained-energy,cluster+in-domain-acoustic | finetune | 10% | 3 | 36.0 |" in text
    assert parse_variant("acoustic=/w/x") == ("acoustic", Path("/w/x"))
    for bad in ("acoustic", "=/w", "pool_only=/w", "none=/w"):
        with pytest.raises(ValueError, match="NAME=FOLDER"):
            parse_variant(bad)
