"""The scaling experiment's report: archived rows kept for blocks not re-measured, and the Markdown tables."""
import pandas as pd

from experiments.scaling import SUMMARY_COLUMNS, merge_archived, summary_markdown


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
    merged = merge_archived(fresh, tmp_path / "summary.csv")
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
