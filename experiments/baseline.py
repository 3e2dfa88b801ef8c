"""The classic baseline on the scaling experiment's splits: eGeMAPS and ComParE + logistic regression.

    .venv/bin/python -m experiments.baseline --work runs/baseline [--shared ../shared] [--steps prepare,grid,report]
        [--fractions 0.1,0.25,1] [--seeds 0,1,2] [--archive docs/results/baseline]

Steps (resumable):

1. ``prepare``: the RAVDESS (8 emotions) and BAVED (3 arousal levels) manifests of :mod:`experiments.scaling`.
2. ``grid``: ``finetune/experiment.py --modes egemaps,compare`` per corpus with the scaling grids' split
   settings (4 gender-balanced speaker folds, 2 dev speakers per fold, split seed 0; label subsets of
   ``label_subset(fraction, seed)``), so each cell is the same fold, seed and label subset as the scaling
   experiment's cell of that name.
3. ``report``: every cell archived in ``ARCHIVE/cells/<corpus>.csv`` (without a work folder, the archived cells are
   read instead; any other ``ARCHIVE/cells/<key>.csv`` is summarised under its own key); ``ARCHIVE/summary.csv``
   with one row per
   corpus, fraction, method and mode: mean UAR (%), and minus eGeMAPS paired cell for cell with the 95%
   interval over fold means. Besides the baselines, the rows hold the archived cells of the scaling
   experiment (``docs/results/scaling/cells``) and, for RAVDESS, the current recipe of the methods grid
   (``docs/results/methods/cells.csv``), paired only on the cells both have; ``summary.md`` the same as a table.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from avpretext.common.cli import CommandParser, comma_list
from avpretext.common.io import write_atomic
from experiments.ravdess_results import timed
from experiments.scaling import CORPORA, REPO, baseline_folder, prepare, run_baseline
from finetune.baseline import BASELINE_INIT, BASELINE_MODES
from finetune.experiment import finished_cells
from finetune.experiment_report import CELL_KEY, METRICS, collect, paired_differences

SUMMARY_COLUMNS = ["corpus", "fraction", "method", "mode", "cells", "uar", "pairs", "diff_vs_egemaps",
                   "ci_fold_low", "ci_fold_high"]
SCALING_CELLS = REPO / "docs" / "results" / "scaling" / "cells"
# RAVDESS only: the current recipe's cells of the methods grid (docs/results.md; the cnn pretrained on the whole
# pool and its scratch twin, on the scaling grids' splits), the only fine-tuned cells at 100% of the labels.
METHODS_CELLS = REPO / "docs" / "results" / "methods" / "cells.csv"


def scaling_methods(corpus: str, cells_folder: Path = SCALING_CELLS) -> pd.DataFrame:
    """The scaling experiment's archived cells of ``corpus`` as rows with a ``method`` (``scratch-<encoder>``
    or ``pretrained-<encoder>-<rung>``) and ``mode``: scratch cells are linked into every rung, so they are
    kept once."""
    parts = []
    for path in sorted(cells_folder.glob(f"{corpus}-*.csv")):
        encoder = path.stem.split("-")[1]
        if encoder == "baseline":
            continue
        table = pd.read_csv(path)
        method = table["init"] + "-" + encoder + (table["init"] == "pretrained").map({True: "-", False: ""}) \
            + table["rung"].where(table["init"] == "pretrained", "")
        parts.append(table.assign(method=method).drop_duplicates(CELL_KEY))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def methods_grid(corpus: str, cells_csv: Path = METHODS_CELLS) -> pd.DataFrame:
    """The methods grid's current-recipe cells (RAVDESS) as ``<init>-cnn[-all]-methods-grid`` rows."""
    if corpus != "ravdess" or not cells_csv.exists():
        return pd.DataFrame()
    table = pd.read_csv(cells_csv)
    table = table[table["method"] == "current"]
    names = {"pretrained": "pretrained-cnn-all-methods-grid", "scratch": "scratch-cnn-methods-grid"}
    return table.assign(method=table["init"].map(names))


def archived_experiments(archive: Path, corpus: str) -> pd.DataFrame:
    """Cells of further experiments archived beside the baseline (``ARCHIVE/<corpus>_<name>/cells.csv``, a
    ``method`` column naming each configuration), so that rewriting the summary keeps their rows; their own
    eGeMAPS cells are the baseline's and are left out. A configuration archived again in a later folder (an
    encoder read once more beside a new one, so that the two pair on one machine) counts once, from the first
    folder in name order: a summary row is one measurement of each cell, never two averaged."""
    parts = [pd.read_csv(path) for path in sorted(archive.glob(f"{corpus}_*/cells.csv"))]
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    table = table[~table["method"].isin(BASELINE_MODES)]
    return table.drop_duplicates(CELL_KEY, keep="first")


def summary_rows(corpus: str, baseline_cells: pd.DataFrame, others: pd.DataFrame) -> pd.DataFrame:
    """One row per method and mode: mean UAR over its cells and minus eGeMAPS over the matched cells."""
    baseline = baseline_cells.assign(method=baseline_cells["mode"], mode=BASELINE_INIT)
    table = pd.concat([baseline, others], ignore_index=True)
    reference = table[table["method"] == "egemaps"]
    rows = []
    for (method, mode, fraction), part in table.groupby(["method", "mode", "fraction"], sort=False):
        row = {"corpus": corpus, "fraction": fraction, "method": method, "mode": mode, "cells": len(part),
               "uar": 100 * part["uar"].mean(), "pairs": 0}
        if method != "egemaps":  # paired on the cells both have (same fraction, fold and seed)
            pair = pd.concat([part.assign(method="compared"), reference[reference["fraction"] == fraction]])
            diff = paired_differences(pair[["method", "fraction", "fold", "seed", *METRICS]], by="method",
                                      treated="compared", baseline="egemaps")
            if len(diff):
                d = diff.iloc[0]
                row |= {"pairs": int(d["pairs"]), "diff_vs_egemaps": 100 * d["uar_diff"],
                        "ci_fold_low": 100 * d["uar_fold_ci_low"], "ci_fold_high": 100 * d["uar_fold_ci_high"]}
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_markdown(summary: pd.DataFrame) -> str:
    lines = ["| corpus | labels | method | mode | cells | UAR | minus eGeMAPS (pairs) | CI over fold means |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in summary.sort_values(["corpus", "fraction", "uar"], ascending=[True, True, False]).iterrows():
        diff = "-" if pd.isna(r["diff_vs_egemaps"]) else f"{r['diff_vs_egemaps']:+.1f} ({int(r['pairs'])})"
        ci = "-" if pd.isna(r["ci_fold_low"]) else f"[{r['ci_fold_low']:+.1f}, {r['ci_fold_high']:+.1f}]"
        lines.append(f"| {r['corpus']} | {r['fraction']:.0%} | {r['method']} | {r['mode']} | {r['cells']} | "
                     f"{r['uar']:.1f} | {diff} | {ci} |")
    return "\n".join(lines) + "\n"


def baseline_cells(work: Path, archive: Path, corpus: str) -> pd.DataFrame:
    """The corpus's baseline cells: the work folder's, archived into ``ARCHIVE/cells/<corpus>.csv``; without a
    work folder, the archived ones (so the summary can be rewritten when another experiment adds rows)."""
    folder, archived = baseline_folder(work, corpus), archive / "cells" / f"{corpus}.csv"
    if (folder / "cells").is_dir():
        cells = collect(folder, finished_cells(folder))
        if not cells.empty:
            write_atomic(archived, lambda tmp: cells.to_csv(tmp, index=False, float_format="%.4f"))
        return cells
    return pd.read_csv(archived) if archived.is_file() else pd.DataFrame()


def summary_corpora(work: Path, archive: Path) -> tuple[str, ...]:
    """The scaling corpora, then every further key with baseline cells in the work folder
    (``WORK/experiments/<key>/baseline``) or the archive (``ARCHIVE/cells/<key>.csv``), e.g. ``baved-devcover``:
    BAVED on splits made another way, whose cells must not pair with ``baved``'s."""
    keys = {p.stem for p in (archive / "cells").glob("*.csv")}
    keys |= {p.parent.name for p in (work / "experiments").glob("*/baseline")}
    return (*CORPORA, *sorted(keys - set(CORPORA)))


def report(work: Path, archive: Path) -> pd.DataFrame:
    parts = []
    for corpus in summary_corpora(work, archive):
        cells = baseline_cells(work, archive, corpus)
        if cells.empty:
            continue
        others = pd.concat([scaling_methods(corpus), methods_grid(corpus), archived_experiments(archive, corpus)],
                           ignore_index=True)
        parts.append(summary_rows(corpus, cells, others))
    summary = pd.concat(parts, ignore_index=True)
    write_atomic(archive / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False, float_format="%.2f"))
    text = summary_markdown(summary)
    write_atomic(archive / "summary.md", lambda tmp: tmp.write_text(text))
    print(text)
    return summary


def main(argv=None) -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--fractions", type=comma_list(float), default=[0.1, 0.25, 1.0])
    parser.add_argument("--seeds", type=comma_list(int), default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--steps", default="prepare,grid,report")
    parser.add_argument("--modes", type=comma_list(), default=["egemaps", "compare"],
                        help="baseline modes, run in this order")
    parser.add_argument("--archive", type=Path, default=REPO / "docs" / "results" / "baseline")
    args = parser.parse_args(argv)
    steps = args.steps.split(",")
    if "prepare" in steps or "grid" in steps:  # a report alone reads, and may read only the archive
        args.work.mkdir(parents=True, exist_ok=True)
    if "prepare" in steps:
        timed(args.work, "prepare", prepare, args.work, args.shared)
    if "grid" in steps:
        for mode in args.modes:  # every corpus's eGeMAPS cells before the larger ComParE
            for corpus in CORPORA:
                timed(args.work, f"{mode}_{corpus}", run_baseline, args.work, corpus, args.fractions, args.seeds,
                      args.folds, [mode])
    if "report" in steps:
        report(args.work, args.archive)


if __name__ == "__main__":
    main()
