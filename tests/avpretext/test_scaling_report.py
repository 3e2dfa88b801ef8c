"""The scaling experiment's report: archived rows kept for blocks not re-measured, and the Markdown tables."""
import numpy as np
import pandas as pd
import pytest

from experiments.scaling_report import SUMMARY_COLUMNS, curve_trend, summary_markdown, trend_markdown
from finetune.experiment_report import merge_unmeasured_blocks


def rows(corpus, encoder, mode, diffs):
    return pd.DataFrame([{"corpus": corpus, "encoder": encoder, "mode": mode, "fraction": fraction,
                          "pretrain_hours": hours, "pairs": 12, "diff": diff, "ci_low": diff - 2,
                          "ci_high": diff + 2, "ci_fold_low": diff - 4, "ci_fold_high": diff + 4}
                         for (fraction, hours), diff in diffs.items()], columns=SUMMARY_COLUMNS)


def test_a_remeasured_block_replaces_its_archived_rows_and_others_are_kept(tmp_path):
    archived = pd.concat([rows("ravdess", "cnn", "probe", {(0.1, 0.5): 4.4}),
                          rows("ravdess", "cnn", "finetune", {(0.1, 0.5): -9.0})])
    archived.to_csv(tmp_path / "summary.csv", index=False)
    fresh = rows("ravdess", "cnn", "finetune", {(0.1, 0.5): -0.2, (0.1, 6.1): -1.1})
    merged = merge_unmeasured_blocks(fresh, tmp_path / "summary.csv", ["corpus", "encoder", "mode"])
    assert sorted(merged["diff"]) == [-1.1, -0.2, 4.4]  # the archived finetune row is gone, the probe row kept


def test_markdown_has_one_table_per_block_with_a_row_per_size_and_a_column_per_fraction():
    summary = pd.concat([rows("baved", "cnn", "finetune", {(0.1, 0.5): 4.8, (0.25, 0.5): 0.9, (0.1, 6.1): 2.0}),
                         rows("baved", "crnn", "probe", {(1.0, 0.5): -1.0})])
    text = summary_markdown(summary)
    assert text.count("| pretraining h |") == 2
    assert "| pretraining h | 10% labels | 25% labels |" in text
    assert "| 0.5 | +4.8 [+2.8, +6.8] / [+0.8, +8.8] | +0.9 [-1.1, +2.9] / [-3.1, +4.9] |" in text
    assert "| 6.1 | +2.0 [+0.0, +4.0] / [-2.0, +6.0] | - |" in text  # a fraction not measured at that size
    assert "baved, crnn, probe" in text


def test_the_trend_is_the_gain_per_doubling_and_extrapolates_to_the_target():
    # diff = 1 + 2 * log2(hours): +2 points per doubling, +5 reached at 4 h; a flat curve never reaches it.
    rising = rows("ravdess", "cnn", "probe", {(0.1, h): 1 + 2 * np.log2(h) for h in (0.5, 1, 2, 4)})
    flat = rows("baved", "cnn", "finetune", {(0.1, 0.5): 3.0, (0.1, 6.1): 3.0})
    single = rows("baved", "crnn", "probe", {(0.1, 0.5): 9.0})  # one rung: no line
    trend = curve_trend(pd.concat([rising, flat, single])).set_index("corpus")
    assert list(trend.index) == ["ravdess", "baved"]
    assert trend.loc["ravdess", "per_doubling"] == pytest.approx(2.0)
    assert trend.loc["ravdess", "ci_low"] == pytest.approx(2.0)  # points on the line: no spread
    assert trend.loc["ravdess", "hours_to_target"] == pytest.approx(4.0)
    assert np.isnan(trend.loc["baved", "hours_to_target"]) and np.isnan(trend.loc["baved", "ci_low"])
    assert "never (slope <= 0)" in trend_markdown(trend.reset_index())
    slow = rows("ravdess", "cnn", "probe", {(0.1, 0.5): 1.0, (0.1, 1.0): 1.1})  # 5 points at 2^40 x 0.5 h
    assert "> 100 (over 100x the data measured)" in trend_markdown(curve_trend(slow))
