"""experiments.au_downstream's report: the learned-label encoder against the rule-label encoder, matched cell for
cell, and every row against eGeMAPS."""
from __future__ import annotations

import pandas as pd

from experiments.au_downstream import report


def _cell(mode, init, mapping, fold, uar, fraction=0.1):
    return {"mode": mode, "init": init, "fraction": fraction, "fold": fold, "seed": 0, "uar": uar,
            "macro_f1": uar, "accuracy": uar, "mapping": mapping}


def test_learned_minus_rules_pairs_pretrained_cells_on_fold_and_seed():
    rows = []
    for i, fold in enumerate(("fold0", "fold1", "fold2")):
        rows += [_cell("finetune", "pretrained", "rules", fold, 0.30 + 0.01 * i),
                 _cell("finetune", "pretrained", "learned", fold, 0.34 + 0.01 * i + 0.01 * (i == 2)),
                 _cell("finetune", "scratch", "rules", fold, 0.33),
                 _cell("finetune", "scratch", "learned", fold, 0.33),
                 _cell("egemaps", "logreg", "none", fold, 0.37)]
    # A learned cell without its rules twin (another seed) must not enter the paired difference.
    rows.append({**_cell("finetune", "pretrained", "learned", "fold0", 0.90), "seed": 1})
    text = report(pd.DataFrame(rows), {"rules": {"labelled": 10, "neutral": 8}, "learned": {"labelled": 10}})
    # (4 + 4 + 5) / 3 = 4.33 points over the 3 matched pairs
    assert "| learned - rules | finetune | 10% | 3 | +4.3 |" in text
    assert "- rules: {'labelled': 10, 'neutral': 8}" in text
    # rules 31.0, learned mean of 0.34, 0.35, 0.37, 0.90 = 49.0, scratch 33.0
    assert "| finetune | 10% | 31.0 | 49.0 | 33.0 | 4 |" in text
    # learned pretrained - eGeMAPS over fold x seed pairs: (34 + 35 + 37) / 3 - 37 = -1.7
    assert "| learned - eGeMAPS | finetune | 10% | 3 | -1.7 |" in text
    assert text.count("| scratch - eGeMAPS | finetune | 10% | 3 | -4.0 |") == 1  # one scratch grid, listed once
    # rules pretrained - scratch: (30 + 31 + 32) / 3 - 33 = -2.0
    assert "| rules - scratch | finetune | 10% | 3 | -2.0 |" in text
