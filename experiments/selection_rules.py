"""Which model-selection rule holds with few labels: the fine-tuning recipe from scratch, every rule of
``FinetuneConfig.selection`` (``finetune.selection``) scored on the same training runs.

    .venv/bin/python -m experiments.selection_rules --manifest M.csv --work WORK
        [--rules smoothed_uar,full_window_uar,dev_loss] [--fraction 0.1] [--seeds 0,1,2] [--set key=value ...]
        [--archive docs/results/selection]
    .venv/bin/python -m experiments.selection_rules --report docs/results/selection/cells.csv   # print only

A rule only decides which epoch is kept and when training stops; training itself does not depend on it. So
each cell (fold, seed) is one run of the recipe with ``compare_selections``: it trains until every rule would
have stopped (the recipe's patience) and scores the test speakers at the epoch each rule keeps, exactly as the
rule's own run would (tests/finetune/test_selection.py). Cells are ``WORK/cells/<fold>-s<seed>/``; a rerun skips finished cells, so
a killed run resumes; seed by seed, so a partial run already covers every fold. The report gives per rule the
mean test UAR with a 95% interval over fold means, the rule minus ``smoothed_uar`` paired cell for cell
(interval over fold means), the spread over seeds within a fold (steadiness), and the epoch selected.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from avpretext.common.cli import CommandParser
from avpretext.common.io import check_output_folder, write_atomic, write_json_atomic
from experiments.recipe_methods import RECIPE
from finetune.config import SELECTIONS
from finetune.experiment import base_config
from finetune.experiment_report import t_quantile
from finetune.loop import train_split
from finetune.train import load_splits

BASELINE_RULE = "smoothed_uar"


def interval(values) -> tuple[float, float, float]:
    """(mean, low, high): the 95% t-interval of the mean of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    half = t_quantile(len(values)) * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 \
        else float("nan")
    return mean, mean - half, mean + half


def run_cells(manifest: str, work: Path, fraction: float, seeds, extra=(), log=print) -> dict:
    """Every unfinished cell (scratch ``cnn``, fine-tuning, every rule compared)."""
    from accelerate import Accelerator  # heavy (seconds to import): only a run of the cells needs it

    work = check_output_folder(work)
    base = base_config(manifest, [*RECIPE, "encoder=cnn", *extra])
    compared = dataclasses.replace(base, compare_selections=True, label_fraction=fraction, save_model=False)
    targets, splits = load_splits(compared)
    accelerator = Accelerator(mixed_precision="no")
    cells = [(split, seed) for seed in seeds for split in splits]
    started = time.perf_counter()
    for i, (split, seed) in enumerate(cells):
        folder = work / "cells" / f"{split.name}-s{seed}"
        if (folder / "metrics.json").exists():
            continue
        config = dataclasses.replace(compared, seed=seed, fold=split.name, out=str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "config.json", dataclasses.asdict(config))
        t0 = time.perf_counter()
        train_split(config, split, targets, folder, accelerator)
        log(f"[{i + 1}/{len(cells)}] {split.name} s{seed} ({time.perf_counter() - t0:.0f} s, "
            f"{time.perf_counter() - started:.0f} s so far)", flush=True)


def collect(work: Path, rules) -> pd.DataFrame:
    """One row per finished cell and rule: test UAR (%) of the epoch the rule keeps, that epoch, epochs run."""
    rows = []
    for path in sorted((work / "cells").glob("*/metrics.json")):
        result = json.loads(path.read_text())
        for rule in rules:
            chosen = result["selections"][rule]
            rows.append({"rule": rule, "fold": result["split"], "seed": result["seed"],
                         "fraction": result["label_fraction"], "uar": 100 * chosen["test"]["uar"],
                         "macro_f1": 100 * chosen["test"]["macro_f1"], "best_epoch": chosen["best_epoch"],
                         "epochs_run": chosen["epochs_run"], "train_items": result["train_items"],
                         "dev_items": result["dev_items"]})
    return pd.DataFrame(rows)


def report(cells: pd.DataFrame) -> pd.DataFrame:
    """Per rule: UAR mean and interval over fold means, the paired difference with ``smoothed_uar``, the
    within-fold spread over seeds, and the selected epoch."""
    rows = []
    base = cells[cells["rule"] == BASELINE_RULE].set_index(["fold", "seed"])["uar"]
    for rule, group in cells.groupby("rule", sort=False):
        fold_means = group.groupby("fold")["uar"].mean()
        mean, low, high = interval(fold_means)
        row = {"rule": rule, "cells": len(group), "folds": len(fold_means), "uar": mean, "ci_fold_low": low,
               "ci_fold_high": high, "seed_sd_within_fold": float(group.groupby("fold")["uar"].std(ddof=1).mean()),
               "best_epoch_mean": float(group["best_epoch"].mean()),
               "best_epoch_median": float(group["best_epoch"].median()),
               "best_epoch_le2": float((group["best_epoch"] <= 2).mean()),
               "epochs_run_mean": float(group["epochs_run"].mean())}
        diff = (group.set_index(["fold", "seed"])["uar"] - base).dropna()
        if rule != BASELINE_RULE and len(diff):
            row["diff_vs_smoothed_uar"], row["diff_ci_fold_low"], row["diff_ci_fold_high"] = interval(
                diff.groupby(level="fold").mean())
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    lines = ["| rule | cells | UAR % (95% CI over folds) | minus smoothed_uar (CI over folds) | seed SD in fold | "
             "epoch selected: mean / median / share <= 2 | epochs run |", "|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        diff = "" if pd.isna(r.get("diff_vs_smoothed_uar")) else \
            f"{r['diff_vs_smoothed_uar']:+.1f} [{r['diff_ci_fold_low']:+.1f}, {r['diff_ci_fold_high']:+.1f}]"
        lines.append(f"| {r['rule']} | {r['cells']} | {r['uar']:.1f} [{r['ci_fold_low']:.1f}, {r['ci_fold_high']:.1f}] "
                     f"| {diff} | {r['seed_sd_within_fold']:.1f} | {r['best_epoch_mean']:.1f} / "
                     f"{r['best_epoch_median']:.0f} / {r['best_epoch_le2']:.0%} | {r['epochs_run_mean']:.1f} |")
    return "\n".join(lines) + "\n"


def write_report(cells: pd.DataFrame, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    table = report(cells)
    text = markdown(table)
    write_atomic(folder / "cells.csv", lambda tmp: cells.to_csv(tmp, index=False, float_format="%.4f"))
    write_atomic(folder / "rules.csv", lambda tmp: table.to_csv(tmp, index=False, float_format="%.4f"))
    write_atomic(folder / "rules.md", lambda tmp: tmp.write_text(text))
    return text


def parse_args(argv=None):
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", help="labelled manifest CSV (finetune.prepare)")
    parser.add_argument("--work", help="work folder (rerun to resume)")
    parser.add_argument("--rules", type=lambda s: s.split(","), default=list(SELECTIONS), help="selection rules")
    parser.add_argument("--fraction", type=float, default=0.1, help="label fraction of the training speakers")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra recipe settings")
    parser.add_argument("--archive", help="also write the report and cells here")
    parser.add_argument("--report", help="a cells.csv to report on (runs nothing)")
    args = parser.parse_args(argv)
    if not args.report and not (args.manifest and args.work):
        parser.error("give --manifest and --work (or --report)")
    unknown = [r for r in args.rules if r not in SELECTIONS]
    if unknown:
        parser.error(f"--rules: unknown {unknown}; choose from {', '.join(SELECTIONS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report:
        print(markdown(report(pd.read_csv(args.report))), end="")
        return 0
    try:
        run_cells(args.manifest, Path(args.work), args.fraction, args.seeds, args.set)
    except ValueError as err:
        print(f"experiments.selection_rules: error: {err}", file=sys.stderr)
        return 2
    cells = collect(Path(args.work), args.rules)
    print(write_report(cells, Path(args.work)), end="")
    if args.archive:
        write_report(cells, Path(args.archive))
    return 0


if __name__ == "__main__":
    sys.exit(main())
