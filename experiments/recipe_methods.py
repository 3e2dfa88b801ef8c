"""What the seed papers' fine-tuning methods buy on RAVDESS: each method's pretrained-vs-scratch grid
against the current recipe's, cell for cell.

    .venv/bin/python -m experiments.recipe_methods --manifest M.csv --pretrained RUN --work WORK
        [--methods current,mixup,mixup_log_mel,auxiliary,adversarial,chunk_mean,chunk_attention,
                   chunk_dynamic_mean,chunk_dynamic_gru,cluster]
        [--fractions 0.1,1.0]
        [--seeds 0,1,2] [--set key=value ...] [--archive docs/results/methods]
    .venv/bin/python -m experiments.recipe_methods --report docs/results/methods/cells.csv   # print, run nothing
    .venv/bin/python -m experiments.recipe_methods --report WORK [--archive DIR]   # the finished cells so far
    .venv/bin/python -m experiments.recipe_methods --report docs/results/methods/cells.csv \
        --replicate docs/results/methods/earlier_machine/cells.csv   # the same cells measured twice: how far apart

Every method is ``finetune/experiment.py``'s grid (fine-tuning mode; pretrained and scratch; every fold, seed and
label fraction) with the current recipe's settings plus the method's own (``METHODS``), in ``WORK/<method>``;
each grid is resumable, so rerunning the command continues where a kill left it. The report
(``WORK/methods.md``, ``methods.csv``, and every cell in ``cells.csv``; copied to ``--archive`` if given)
gives, per method, init and fraction, method - current in UAR points over cells matched on init, fraction, fold
and seed, with 95% intervals over the cells and over the fold means. With ``--archive``, the archive's cells of
(method, init, fraction) blocks that WORK has none of are kept in the report (an earlier run's, whose work folder
is gone); a block measured again replaces its archived cells whole.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from avpretext.common.cli import CommandParser
from avpretext.common.io import write_atomic
from finetune.experiment import base_config, finished_cells, run_grid
from finetune.experiment_report import collect, merge_unmeasured_blocks, paired_differences

# The recipe of docs/scaling.md's fine-tuning grids, and each method's settings on top of it.
RECIPE = ["epochs=20", "patience=8", "lr=0.001", "encoder_lr_mult=1.0", "max_seconds=3.0", "batch_size=16",
          "dev_speakers=2", "num_workers=2", "num_folds=4"]
METHODS = {
    "current": [],
    "mixup": ["mixup_alpha=0.4"],  # mixup (Zhang et al.), on waveforms
    "mixup_log_mel": ["mixup_alpha=0.4", "mixup_input=log_mel"],  # the same, on the encoder's log-mel input
    # Latif et al. (IEEE TAC 2022), semi-supervised below label fraction 1: the heads see every training row.
    "auxiliary": ["speaker_weight=0.3", "gender_weight=0.3"],
    "adversarial": ["speaker_weight=0.3", "speaker_adversarial=true"],  # gradient reversal on speaker
    # Fixed-overlap sliding chunks after the 3 s crop: not Lin and Busso's method (docs/results.md).
    "chunk_mean": ["chunk_seconds=1.0", "chunk_mode=sliding", "chunk_overlap=0.5", "chunk_pooling=mean"],
    "chunk_attention": ["chunk_seconds=1.0", "chunk_mode=sliding", "chunk_overlap=0.5", "chunk_pooling=attention"],
    # Lin and Busso's dynamic chunking: whole utterances, C = ceil(longest / S) chunks of S = 1 s each (RAVDESS's
    # longest clip lasts 5.3 s: C = 6), aggregated by mean or by a GRU over the chunk sequence (their RnnAttenVec).
    "chunk_dynamic_mean": ["chunk_seconds=1.0", "chunk_mode=dynamic", "chunk_count=6", "chunk_pooling=mean"],
    "chunk_dynamic_gru": ["chunk_seconds=1.0", "chunk_mode=dynamic", "chunk_count=6", "chunk_pooling=gru"],
    # DeepEmoCluster's semi-supervised fine-tuning (Lin, Sridhar and Busso): k-means pseudo-classes of the model's
    # own pooled embeddings for every training row, re-made every epoch (DeepCluster's schedule), their
    # cross-entropy added to the emotion loss with equal weight; k = 8, RAVDESS's number of emotions. Below label
    # fraction 1 only.
    "cluster": ["cluster_weight=1.0", "cluster_k=8", "recluster_every=1"],
}


def run_method(manifest: str, pretrained: str, work: Path, method: str, fractions, seeds, extra=()) -> pd.DataFrame:
    """The method's grid in ``work/method`` (resumable); its finished cells with a ``method`` column."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    base = base_config(manifest, [*RECIPE, *extra, *METHODS[method]])
    out = work / method
    run_grid(base, pretrained, out, ["finetune"], fractions, seeds)
    return collect(out, finished_cells(out)).assign(method=method)


def measured_cells(work: Path) -> pd.DataFrame:
    """Every finished cell of every method folder in ``work``, without running anything: the report of a grid
    that is still running or was stopped (its cells are complete pairs only where both methods finished)."""
    methods = sorted(p.name for p in work.iterdir() if (p / "cells").is_dir())
    if "current" not in methods:
        raise ValueError(f"{work}: no current/ grid folder to compare the methods with")
    return pd.concat([collect(work / m, finished_cells(work / m)).assign(method=m) for m in methods],
                     ignore_index=True)


def compare(cells: pd.DataFrame) -> pd.DataFrame:
    """method - current per (method, init, fraction), UAR points, with intervals over cells and folds."""
    rows = []
    for method in [m for m in cells["method"].unique() if m != "current"]:
        pair = cells[cells["method"].isin([method, "current"])]
        diff = paired_differences(pair, by="method", treated=method, baseline="current")
        rows += [{"method": method, "init": r["init"], "fraction": r["fraction"], "pairs": int(r["pairs"]),
                  "diff": 100 * r["uar_diff"], "ci_low": 100 * r["uar_ci_low"], "ci_high": 100 * r["uar_ci_high"],
                  "ci_fold_low": 100 * r["uar_fold_ci_low"], "ci_fold_high": 100 * r["uar_fold_ci_high"]}
                 for _, r in diff.iterrows()]
    return pd.DataFrame(rows, columns=["method", "init", "fraction", "pairs", "diff", "ci_low", "ci_high",
                                       "ci_fold_low", "ci_fold_high"])


def replicate_table(cells: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``cells - other`` (the same grid measured twice, e.g. on two machines) per (method, init, fraction), UAR
    points over cells matched on fold and seed: the mean shift with its 95% interval, and the standard deviation
    and range of the per-cell differences (how far one cell moves between the runs)."""
    both = pd.concat([cells.assign(run="this"), other.assign(run="other")], ignore_index=True)
    block = ["method", "init", "fraction"]
    wide = both.pivot_table(index=block + ["fold", "seed"], columns="run", values="uar").dropna()
    spread = (100 * (wide["this"] - wide["other"])).groupby(level=block).agg(
        cell_sd=lambda d: d.std(ddof=1), cell_min="min", cell_max="max").reset_index()
    shift = paired_differences(both, by="run", treated="this", baseline="other")
    shift = shift.assign(pairs=shift["pairs"].astype(int), shift=100 * shift["uar_diff"],
                         ci_low=100 * shift["uar_ci_low"], ci_high=100 * shift["uar_ci_high"])
    return shift[block + ["pairs", "shift", "ci_low", "ci_high"]].merge(spread, on=block)


def replicate_markdown(table: pd.DataFrame) -> str:
    lines = ["This run - the other, UAR points over matched cells (mean with 95% CI; per-cell SD and range):", "",
             "| method | init | labels | pairs | shift | CI | cell SD | cell range |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['init']} | {r['fraction']:.0%} | {r['pairs']} | {r['shift']:+.1f} | "
              f"[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] | {r['cell_sd']:.1f} | "
              f"{r['cell_min']:+.1f} to {r['cell_max']:+.1f} |" for _, r in table.iterrows()]
    return "\n".join(lines) + "\n"


def markdown(cells: pd.DataFrame, table: pd.DataFrame) -> str:
    means = cells.groupby(["method", "init", "fraction"])["uar"].agg(["mean", "count"]).reset_index()
    lines = ["| method | init | labels | cells | UAR |", "|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['init']} | {r['fraction']:.0%} | {int(r['count'])} | {100 * r['mean']:.1f} |"
              for _, r in means.iterrows()]
    lines += ["", "Method - current recipe, UAR points (95% CI over matched cells / over fold means):", "",
              "| method | init | labels | pairs | diff | CI (cells) | CI (folds) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['init']} | {r['fraction']:.0%} | {r['pairs']} | {r['diff']:+.1f} | "
              f"[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] | [{r['ci_fold_low']:+.1f}, {r['ci_fold_high']:+.1f}] |"
              for _, r in table.iterrows()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", help="a RAVDESS manifest (avpretext-prepare ravdess)")
    parser.add_argument("--pretrained", help="a pretext run folder (or exported encoder)")
    parser.add_argument("--work", type=Path, help="one grid folder per method, and the report")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of METHODS; current is added")
    parser.add_argument("--fractions", default="0.1,1.0", help="label fractions")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of every cell")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a fine-tuning setting for every method (after the recipe, before the method's)")
    parser.add_argument("--archive", type=Path, default=None,
                        help="also write the cells and the comparison here (e.g. docs/results/methods)")
    parser.add_argument("--report", type=Path, default=None, metavar="CELLS_CSV",
                        help="only print the comparison of a cells.csv written by an earlier run, or of the finished "
                             "cells in a WORK folder (nothing runs; with --archive also write it there)")
    parser.add_argument("--replicate", type=Path, default=None, metavar="OTHER_CSV",
                        help="with --report: also compare its cells with the same cells of another run's cells.csv")
    args = parser.parse_args(argv)
    if args.replicate and not args.report:
        parser.error("--replicate needs --report")
    if args.report:
        cells = measured_cells(args.report) if args.report.is_dir() else pd.read_csv(args.report)
        table = compare(cells)
        if args.archive:
            write_results(args.archive, cells, table, markdown(cells, table))
        print(markdown(cells, table))
        if args.replicate:
            print(replicate_markdown(replicate_table(cells, pd.read_csv(args.replicate))))
        return
    missing = [f"--{name}" for name in ("manifest", "pretrained", "work") if getattr(args, name) is None]
    if missing:
        parser.error(f"{', '.join(missing)} required (unless --report)")
    methods = ["current"] + [m for m in args.methods.split(",") if m and m != "current"]
    fractions = [float(f) for f in args.fractions.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    cells = pd.concat([run_method(args.manifest, args.pretrained, args.work, m, fractions, seeds, args.set)
                       for m in methods], ignore_index=True)
    if args.archive:
        cells = merge_unmeasured_blocks(cells, args.archive / "cells.csv", ["method", "init", "fraction"])
    table = compare(cells)
    report = markdown(cells, table)
    for folder in [args.work] + ([args.archive] if args.archive else []):
        write_results(folder, cells, table, report)
    print(report)


def write_results(folder: Path, cells: pd.DataFrame, table: pd.DataFrame, report: str) -> None:
    """``cells.csv`` (every finished cell of every method), ``methods.csv`` (the comparison) and ``methods.md``."""
    write_atomic(folder / "cells.csv", lambda tmp: cells.to_csv(tmp, index=False, float_format="%.4f"))
    write_atomic(folder / "methods.csv", lambda tmp: table.to_csv(tmp, index=False, float_format="%.2f"))
    write_atomic(folder / "methods.md", lambda tmp: tmp.write_text(report))


if __name__ == "__main__":
    main()
