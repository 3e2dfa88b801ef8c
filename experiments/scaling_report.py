"""Tables and plots of the scaling experiment (:mod:`experiments.scaling`): the curve of pretrained - scratch
against pretraining hours, its gain per doubling, and the rows minus eGeMAPS, as Markdown, CSV columns and a PNG.

Every function reads finished tables (one row per corpus, encoder, mode, fraction and rung, UAR points), so the
report can be rebuilt from the committed ``docs/results/scaling/summary.csv`` without the work folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from avpretext.common.plots import pyplot, save_figure

SUMMARY_COLUMNS = ["corpus", "encoder", "mode", "fraction", "pretrain_hours", "pairs", "diff", "ci_low", "ci_high",
                   "ci_fold_low", "ci_fold_high"]


def baseline_markdown(table: pd.DataFrame) -> str:
    lines = ["Minus eGeMAPS + logistic regression, cell for cell (UAR points; mean [95% CI over matched cells] / "
             "[over fold means]):", "", "| corpus | encoder | mode | init | pretraining h | labels | pairs | diff |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        hours = "-" if r["init"] == "scratch" else f"{r['pretrain_hours']:.1f}"
        lines.append(f"| {r['corpus']} | {r['encoder']} | {r['mode']} | {r['init']} | {hours} | {r['fraction']:.0%} "
                     f"| {r['pairs']} | {interval_text(r)} |")
    return "\n".join(lines) + "\n"


def plot_curve(summary: pd.DataFrame, path: Path) -> Path:
    """Pretrained - scratch (UAR points, 95% CI over folds) against pretraining hours, one panel per corpus and
    mode, one line per encoder and label fraction."""
    plt = pyplot()

    corpora = list(dict.fromkeys(summary["corpus"]))
    panels = [(c, m) for c in corpora for m in ("probe", "finetune")]
    fig, axes = plt.subplots(len(corpora), 2, figsize=(11, 4 * len(corpora)), squeeze=False, sharex=True)
    for ax, (corpus, mode) in zip(axes.flat, panels):
        part = summary[(summary["corpus"] == corpus) & (summary["mode"] == mode)]
        for i, ((encoder, fraction), line) in enumerate(part.groupby(["encoder", "fraction"])):
            line = line.sort_values("pretrain_hours")
            ax.errorbar(line["pretrain_hours"] * (1 + 0.02 * i), line["diff"],
                        yerr=[line["diff"] - line["ci_fold_low"], line["ci_fold_high"] - line["diff"]],
                        fmt="o-" if encoder == "cnn" else "s--", capsize=3, label=f"{encoder}, {fraction:.0%}")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xscale("log")
        hours = sorted(summary["pretrain_hours"].unique())  # the rungs as plain ticks, not powers of ten
        ax.set_xticks(hours, [f"{h:.1f}" for h in hours])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_title(f"{corpus}, {mode}")
        ax.set_xlabel("pretraining audio (h)")
        ax.set_ylabel("pretrained - scratch (UAR points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def interval_text(row) -> str:
    """``+2.6 [+0.9, +4.3] / [+0.2, +5.0]``: the difference, its interval over cells, then over fold means."""
    return (f"{row['diff']:+.1f} [{row['ci_low']:+.1f}, {row['ci_high']:+.1f}] / "
            f"[{row['ci_fold_low']:+.1f}, {row['ci_fold_high']:+.1f}]")


def summary_markdown(summary: pd.DataFrame) -> str:
    """One table per corpus, encoder and mode: a row per pretraining size, a column per label fraction, each
    cell ``diff [cells CI] / [folds CI]`` in UAR points (the layout of docs/scaling.md)."""
    blocks = []
    for (corpus, encoder, mode), part in summary.groupby(["corpus", "encoder", "mode"], sort=False):
        fractions = sorted(part["fraction"].unique())
        lines = [f"{corpus}, {encoder}, {mode}: pretrained - scratch, UAR points "
                 "(mean [95% CI over matched cells] / [over fold means])", "",
                 "| pretraining h | " + " | ".join(f"{f:.0%} labels" for f in fractions) + " |",
                 "|---|" + "---|" * len(fractions)]
        for hours, row in part.groupby("pretrain_hours"):
            by_fraction = row.set_index("fraction")
            lines.append(f"| {hours:.1f} | " + " | ".join(
                interval_text(by_fraction.loc[f]) if f in by_fraction.index else "-" for f in fractions) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def curve_trend(summary: pd.DataFrame, target: float = 5.0) -> pd.DataFrame:
    """Per corpus, encoder, mode and fraction with two or more rungs: the least-squares line of the difference
    (UAR points) against log2(pretraining hours), as the gain per doubling of the data with its 95% t-interval
    (three or more rungs), and the hours at which the line would reach ``target`` (only for a positive slope;
    an extrapolation). The rungs share their scratch cells and are nested, so the points are not independent:
    the interval is optimistic, a reading aid rather than a test."""
    rows = []
    for key, part in summary.groupby(["corpus", "encoder", "mode", "fraction"], sort=False):
        if part["pretrain_hours"].nunique() < 2:
            continue
        x, y = np.log2(part["pretrain_hours"].to_numpy(float)), part["diff"].to_numpy(float)
        fit = stats.linregress(x, y)
        half = (stats.t.ppf(0.975, len(x) - 2) * fit.stderr) if len(x) > 2 else float("nan")
        reach = 2 ** ((target - fit.intercept) / fit.slope) if fit.slope > 0 else float("nan")
        rows.append(dict(zip(["corpus", "encoder", "mode", "fraction"], key), rungs=len(x),
                         largest_hours=part["pretrain_hours"].max(),
                         per_doubling=fit.slope, ci_low=fit.slope - half, ci_high=fit.slope + half,
                         hours_to_target=reach))
    return pd.DataFrame(rows, columns=["corpus", "encoder", "mode", "fraction", "rungs", "largest_hours",
                                       "per_doubling", "ci_low", "ci_high", "hours_to_target"])


def trend_markdown(trend: pd.DataFrame, target: float = 5.0) -> str:
    lines = [f"Gain per doubling of the pretraining hours (least squares over the rungs; 95% interval with 3 or "
             f"more rungs) and the hours at which that line would reach +{target:g}:", "",
             "| corpus | encoder | mode | labels | rungs | per doubling | hours to reach the target |",
             "|---|---|---|---|---|---|---|"]
    for _, r in trend.iterrows():
        ci = "" if np.isnan(r["ci_low"]) else f" [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]"
        if np.isnan(r["hours_to_target"]):
            reach = "never (slope <= 0)"
        elif r["hours_to_target"] > 100 * r["largest_hours"]:  # beyond any honest extrapolation
            reach = f"> {100 * r['largest_hours']:,.0f} (over 100x the data measured)"
        else:
            reach = f"{r['hours_to_target']:,.0f}"
        lines.append(f"| {r['corpus']} | {r['encoder']} | {r['mode']} | {r['fraction']:.0%} | {r['rungs']} | "
                     f"{r['per_doubling']:+.2f}{ci} | {reach} |")
    return "\n".join(lines) + "\n"
