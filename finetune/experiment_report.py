"""Reports of an experiment folder (:mod:`finetune.experiment`): the cells' table, summaries, paired
differences with 95% intervals over cells and over fold means, Markdown and the data-efficiency plot.

Writes ``EXP/cells.csv`` (one row per cell), ``EXP/summary.csv`` and ``EXP/summary.md`` (mean +- std per
mode/init/fraction), ``EXP/paired.csv`` (pretrained - scratch), ``EXP/vs_egemaps.csv`` (every mode and init minus
the eGeMAPS cell of the same fraction, fold and seed, when the folder has eGeMAPS cells; also in summary.md) and
``EXP/data_efficiency.png``.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from avpretext.common.io import write_atomic
from avpretext.common.plots import pyplot, save_figure
from finetune.baseline import BASELINE_INIT, BASELINE_MODES

METRICS = ("uar", "macro_f1", "accuracy")
# What names one cell of a results table: the configuration (method, mode) and the grid point.
CELL_KEY = ["method", "mode", "fraction", "fold", "seed"]
INITS = ("scratch", "pretrained")  # the encoder inits a grid compares, in the order the reports list them


def collect(out: Path, cells: list) -> pd.DataFrame:
    """One row per finished cell (:class:`finetune.experiment.Cell`, with ``name``): its grid coordinates, test scores, best epoch and training time."""
    rows = []
    for cell in cells:
        path = out / "cells" / cell.name / "metrics.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        rows.append(dataclasses.asdict(cell) | {m: result["test"][m] for m in METRICS}
                    | {"best_epoch": result["best_epoch"], "train_seconds": result["train_seconds"]})
    table = pd.DataFrame(rows)
    write_atomic(out / "cells.csv", lambda tmp: table.to_csv(tmp, index=False))
    return table


def merge_unmeasured_blocks(measured: pd.DataFrame, archived_csv: Path, block: list[str]) -> pd.DataFrame:
    """``measured`` plus the rows of ``archived_csv`` (an archive of an earlier run, whose work folder may be
    gone) in blocks (rows sharing the ``block`` columns) that ``measured`` has none of; a block measured again
    replaces its archived rows whole, so one block never mixes two runs."""
    if not Path(archived_csv).exists():
        return measured
    archived = pd.read_csv(archived_csv)
    have = set(map(tuple, measured[block].drop_duplicates().to_numpy()))
    keep = archived[[tuple(r) not in have for r in archived[block].to_numpy()]]
    return pd.concat([keep, measured], ignore_index=True)[list(measured.columns)] if len(keep) else measured


def summary_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count of each metric per (mode, init, fraction)."""
    grouped = cells.groupby(["mode", "init", "fraction"])[list(METRICS)]
    table = grouped.agg(["mean", "std", "count"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    return table.reset_index()


def t_quantile(n: int) -> float:
    """The 97.5% quantile of Student's t with n - 1 degrees of freedom (two-sided 95% interval)."""
    return float(stats.t.ppf(0.975, n - 1)) if n > 1 else float("nan")


def interval_text(low: float, high: float, n: int) -> str:
    """``[+1.2, +3.4]`` (points) for a 95% interval over ``n`` units; one unit has no spread, so no interval:
    the report says so instead of printing ``[+nan, +nan]``."""
    if n < 2 or not np.isfinite([low, high]).all():
        return f"none (n={n})"
    return f"[{100 * low:+.1f}, {100 * high:+.1f}]"


def paired_differences(cells: pd.DataFrame, by: str = "init", treated: str = "pretrained",
                       baseline: str = "scratch") -> pd.DataFrame:
    """``treated - baseline`` (values of column ``by``; default pretrained - scratch) per (mode, fraction) and
    any other grid column present (``init`` when comparing methods), over cells matched on fold and seed.

    ``*_ci_low/high``: 95% t-interval over the matched cells. Cells of one fold share their test speakers,
    so they are not independent; ``*_fold_ci_*`` first averages each fold's seeds and takes the interval
    over folds (fewer, independent units: wider and more honest when folds differ).
    """
    groups = [k for k in ("mode", "init", "method", "fraction") if k in cells and k != by]
    keys = groups + ["fold", "seed"]
    pre = cells[cells[by] == treated].set_index(keys)[list(METRICS)]
    scr = cells[cells[by] == baseline].set_index(keys)[list(METRICS)]
    diff = (pre - scr).dropna().reset_index()
    rows = []
    for values, group in diff.groupby(groups):
        row = dict(zip(groups, values)) | {"pairs": len(group), "folds": group["fold"].nunique()}
        per_fold = group.groupby("fold")[list(METRICS)].mean()
        for metric in METRICS:
            for prefix, values in ((metric, group[metric]), (f"{metric}_fold", per_fold[metric])):
                mean = float(values.mean())
                half = t_quantile(len(values)) * float(values.std(ddof=1)) / np.sqrt(len(values)) \
                    if len(values) > 1 else float("nan")
                if prefix == metric:
                    row[f"{metric}_diff"] = mean
                row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"] = mean - half, mean + half
        rows.append(row)
    return pd.DataFrame(rows)


def baseline_paired(cells: pd.DataFrame, baseline: str = "egemaps") -> pd.DataFrame:
    """Every other (mode, init) minus the ``baseline`` mode's cell of the same fraction, fold and seed
    (the columns of :func:`paired_differences`, plus ``mode`` and ``init``; empty without baseline cells)."""
    if cells.empty or baseline not in set(cells["mode"]):
        return pd.DataFrame()
    reference = f"{baseline}-{BASELINE_INIT}"
    table = cells.assign(method=cells["mode"] + "-" + cells["init"]).drop(columns=["mode", "init"])
    parts = []
    for (mode, init), _ in cells.groupby(["mode", "init"], sort=False):
        method = f"{mode}-{init}"
        if method == reference:
            continue
        diff = paired_differences(table[table["method"].isin([method, reference])], by="method", treated=method,
                                  baseline=reference)
        if len(diff):
            parts.append(diff.assign(mode=mode, init=init))
    if not parts:
        return pd.DataFrame()
    joined = pd.concat(parts, ignore_index=True)
    return joined[["mode", "init", *[c for c in joined.columns if c not in ("mode", "init")]]]


def comparison_rows(diff: pd.DataFrame, label: str) -> list[str]:
    """Markdown rows ``| label | mode | labels | pairs | diff | CI (cells) | CI (folds) |`` of a
    :func:`paired_differences` table (UAR points)."""
    return [f"| {label} | {r['mode']} | {r['fraction']:.0%} | {int(r['pairs'])} | {100 * r['uar_diff']:+.1f} | "
            f"{interval_text(r['uar_ci_low'], r['uar_ci_high'], int(r['pairs']))} | "
            f"{interval_text(r['uar_fold_ci_low'], r['uar_fold_ci_high'], int(r['folds']))} |"
            for _, r in diff.iterrows()]


def baseline_comparison_rows(groups: dict[str, pd.DataFrame], baseline_cells: pd.DataFrame,
                             baseline: str = "egemaps", name: str = "eGeMAPS") -> list[str]:
    """:func:`comparison_rows` of each group of neural cells (one init per group, e.g. one encoder's pretrained
    cells, or the scratch cells) minus the ``baseline`` mode's cells, paired on fraction, fold and seed."""
    rows = []
    for label, cells in groups.items():
        rows += comparison_rows(baseline_paired(pd.concat([cells, baseline_cells], ignore_index=True), baseline),
                                f"{label} - {name}")
    return rows


COMPARISON_HEADER = ["| comparison | mode | labels | pairs | diff | CI (cells) | CI (folds) |",
                     "|---|---|---|---|---|---|---|"]


def baseline_markdown(against: pd.DataFrame, baseline: str = "egemaps") -> str:
    """The table of :func:`baseline_paired`: UAR points with 95% intervals over cells and over fold means."""
    lines = [f"Minus {baseline} + logistic regression, paired cell for cell on fold, seed and label subset "
             "(UAR points; 95% CI over cells, then over fold means):", "",
             "| mode | init | labels | pairs | UAR diff | CI (cells) | CI (folds) |", "|---|---|---|---|---|---|---|"]
    for _, r in against.iterrows():
        lines.append(f"| {r['mode']} | {r['init']} | {r['fraction']:.0%} | {int(r['pairs'])} | "
                     f"{100 * r['uar_diff']:+.1f} | {interval_text(r['uar_ci_low'], r['uar_ci_high'], int(r['pairs']))} | "
                     f"{interval_text(r['uar_fold_ci_low'], r['uar_fold_ci_high'], int(r['folds']))} |")
    return "\n".join(lines) + "\n"


def markdown(summary: pd.DataFrame, paired: pd.DataFrame) -> str:
    lines = ["| mode | init | labels | n | UAR | macro-F1 | accuracy |", "|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        cells = [f"{100 * r[f'{m}_mean']:.1f} ± {100 * np.nan_to_num(r[f'{m}_std']):.1f}" for m in METRICS]
        lines.append(f"| {r['mode']} | {r['init']} | {r['fraction']:.0%} | {int(r['uar_count'])} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Pretrained - scratch, paired over fold x seed cells (points; 95% CI over cells, then over "
              "fold means):", "",
              "| mode | labels | pairs | UAR diff | CI (cells) | CI (folds) | macro-F1 diff | accuracy diff |",
              "|---|---|---|---|---|---|---|---|"]
    for _, r in paired.iterrows():
        lines.append(
            f"| {r['mode']} | {r['fraction']:.0%} | {int(r['pairs'])} | {100 * r['uar_diff']:+.1f} | "
            f"{interval_text(r['uar_ci_low'], r['uar_ci_high'], int(r['pairs']))} | "
            f"{interval_text(r['uar_fold_ci_low'], r['uar_fold_ci_high'], int(r['folds']))} | "
            f"{100 * r['macro_f1_diff']:+.1f} | {100 * r['accuracy_diff']:+.1f} |")
    return "\n".join(lines) + "\n"


def plot_efficiency(summary: pd.DataFrame, path: Path) -> Path:
    """UAR (mean +- std over cells) against the label fraction, one panel per mode, one line per init; the
    baseline modes (egemaps, compare) are drawn in every panel for reference."""
    plt = pyplot()

    present = list(dict.fromkeys(summary["mode"]))
    modes = [m for m in present if m not in BASELINE_MODES] or present
    lines = [(None, init, style) for init, style in zip(INITS, ("o--", "s-"))]  # None: the panel's mode
    lines += [(m, BASELINE_INIT, style) for m, style in zip(BASELINE_MODES, ("k^:", "kv-.")) if m in present]
    fig, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 4), squeeze=False, sharey=True)
    for ax, mode in zip(axes[0], modes):
        for line_mode, init, style in lines:
            rows = summary[(summary["mode"] == (line_mode or mode)) & (summary["init"] == init)].sort_values("fraction")
            if rows.empty:
                continue
            ax.errorbar(rows["fraction"] * 100, rows["uar_mean"] * 100, yerr=np.nan_to_num(rows["uar_std"]) * 100,
                        fmt=style, capsize=3, label=line_mode or init)
        ax.set_xscale("log")
        ax.set_xticks([10, 25, 50, 100], ["10", "25", "50", "100"])
        ax.set_xlabel("training labels used (%)")
        ax.set_title(mode)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("test UAR (%)")
    return save_figure(fig, path)


def write_reports(cells: pd.DataFrame, out: Path) -> None:
    if cells.empty:
        return
    summary = summary_table(cells)
    paired = paired_differences(cells)
    against = baseline_paired(cells)
    text = markdown(summary, paired) + (f"\n{baseline_markdown(against)}" if len(against) else "")
    write_atomic(out / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    write_atomic(out / "paired.csv", lambda tmp: paired.to_csv(tmp, index=False))
    if len(against):
        write_atomic(out / "vs_egemaps.csv", lambda tmp: against.to_csv(tmp, index=False))
    write_atomic(out / "summary.md", lambda tmp: tmp.write_text(text))
    plot_efficiency(summary, out / "data_efficiency.png")
