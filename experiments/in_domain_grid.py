"""Does in-domain unlabelled audio help? The RAVDESS grid of the per-fold pretrainings of
:mod:`experiments.in_domain` against their pool-only twin, scratch and eGeMAPS + LR (issue 24, item 6).

    .venv/bin/python -m experiments.in_domain_grid --work GRID --in-domain IN_DOMAIN_WORK --manifest M.csv
        [--tasks energy,cluster] [--fractions 0.1] [--seeds 0] [--modes probe,finetune]
        [--scratch-from OTHER_GRID] [--variant NAME=OTHER_IN_DOMAIN_WORK ...] [--steps cells,baseline,report]
        [--archive DIR] [--name NAME]

``IN_DOMAIN_WORK`` is the ``--work`` of ``experiments.in_domain`` run with ``--pool-only`` and the grid's split
settings (``num_folds=4``, ``dev_speakers=2``: the scaling grids'); its ``<fold>/run`` and ``pool/run`` are the
two arms. Each ``--variant NAME=OTHER_IN_DOMAIN_WORK`` adds that folder's ``<fold>/run`` as a further arm (e.g. a
second stage with other tasks from the same pool run), paired with the pool-only twin, the in-domain arm and
scratch in one grid, so its cells are never paired with another machine's. Steps, each resumable:

1. ``cells``: per mode, the scaling recipe's grid (:func:`experiments.scaling.run_cells`) for each arm; the
   scratch cells are the same model for both arms (architecture, fold, seed, subset, settings), trained once;
   ``--scratch-from`` links the finished scratch cells of another scaling-layout work folder (e.g. an
   ``experiments.au_downstream`` run of the same cnn on the same machine) instead of training them again.
2. ``baseline``: eGeMAPS + logistic regression on the same folds, seeds and label subsets.
3. ``report``: ``GRID/in_domain.md`` and ``cells.csv`` (a ``method`` column per configuration, the layout of
   ``docs/results/baseline/<corpus>_<name>/cells.csv`` that :mod:`experiments.baseline` folds into its
   summary): in-domain - pool-only over matched pretrained cells, each arm - scratch, every row - eGeMAPS.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from avpretext.common.cli import CommandParser, comma_list
from avpretext.common.io import write_atomic
from experiments.ravdess_results import share_scratch_cells, timed
from experiments.scaling import Rung, copy_manifest, measured_arms, run_baseline, run_cells, scratch_folder
from finetune.experiment_report import (CELL_KEY, COMPARISON_HEADER, baseline_comparison_rows, comparison_rows,
                                        paired_differences)

CORPUS = "ravdess"
ENCODER = "cnn"
ARMS = ("in_domain", "pool_only")


def arm_pretrained(in_domain_work: Path, arm: str) -> str:
    """The grid's ``--pretrained`` for an arm: each fold's own run, or the pool-only twin."""
    return str(in_domain_work / "{fold}" / "run") if arm != "pool_only" else str(in_domain_work / "pool" / "run")


def parse_variant(text: str) -> tuple[str, Path]:
    """``NAME=IN_DOMAIN_WORK`` of ``--variant``: a further fold-run arm named NAME."""
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder or name in (*ARMS, "none"):
        raise ValueError(f"--variant {text}: NAME=FOLDER (an experiments.in_domain --work), NAME not one of "
                         f"{', '.join((*ARMS, 'none'))}")
    return name, Path(folder)


def method_name(arm: str, init: str, mode: str, tasks: str, name: str = "") -> str:
    """A cell's method in the summary; ``name`` (the grid's ``--name``) sets apart the rows of grids run on
    different machines or from different pretrainings, which must never be pooled."""
    if arm == "none":
        return mode  # a baseline mode (egemaps)
    suffix = f"-{name}" if name else ""
    if init == "scratch":
        # Not the scaling grid's "scratch-cnn" rows: the same model trained on another machine, never pooled.
        return f"scratch-{ENCODER}-in-domain-grid" + suffix
    kind = {"in_domain": "+in-domain", "pool_only": ""}.get(arm, f"+in-domain-{arm}")
    return f"pretrained-{tasks}{kind}{suffix}"


def measured_cells(work: Path, tasks: str, name: str = "", variants: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every finished cell of the arms (and ``variants``) and of the baseline, with ``arm`` and ``method``
    columns; scratch cells (shared by the arms) appear once."""
    cells = measured_arms(work, CORPUS, ENCODER, (*ARMS, *variants), "arm")
    cells["method"] = [method_name(a, i, m, tasks, name)
                       for a, i, m in zip(cells["arm"], cells["init"], cells["mode"])]
    cells = cells.drop_duplicates(CELL_KEY)
    return cells.assign(corpus=CORPUS)


def report(cells: pd.DataFrame, tasks: str, name: str = "") -> str:
    """Markdown: mean UAR per method, mode and fraction, then the paired differences."""
    lines = [f"# In-domain unlabelled audio in pretraining ({CORPUS}, tasks {tasks}{', ' + name if name else ''})",
             "",
             "| method | mode | labels | cells | UAR (%) |", "|---|---|---|---|---|"]
    for (method, mode, fraction), part in cells.groupby(["method", "mode", "fraction"]):
        lines.append(f"| {method} | {mode} | {fraction:.0%} | {len(part)} | {100 * part['uar'].mean():.1f} |")
    neural = cells[cells["arm"] != "none"]
    pretrained = neural[neural["init"] == "pretrained"]
    lines += ["", "Paired differences (UAR points; 95% CI over matched cells, then over fold means):", "",
              *COMPARISON_HEADER]
    variants = [a for a in pretrained["arm"].unique() if a not in ARMS]
    pairs = [(arm, "pool_only") for arm in ("in_domain", *variants)] + [(v, "in_domain") for v in variants]
    for treated, reference in pairs:
        label = f"{treated.replace('_', '-')} - {reference.replace('_', '-')}"
        lines += comparison_rows(paired_differences(pretrained.drop(columns=["method"]), by="arm", treated=treated,
                                                    baseline=reference), label)
    scratch = neural[neural["init"] == "scratch"]
    for arm in (*ARMS, *variants):
        both = pd.concat([pretrained[pretrained["arm"] == arm], scratch], ignore_index=True)
        lines += comparison_rows(paired_differences(both.drop(columns=["arm", "method"])), f"{arm} - scratch")
    baseline = cells[cells["arm"] == "none"]
    if len(baseline):
        groups = {method: part.drop(columns=["arm", "method"]) for method, part in neural.groupby("method")}
        lines += baseline_comparison_rows(groups, baseline.drop(columns=["arm", "method"]))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="the grid's work folder")
    parser.add_argument("--in-domain", type=Path, required=True, help="an experiments.in_domain --work folder")
    parser.add_argument("--manifest", type=Path, required=True, help="the RAVDESS manifest the pretrainings used")
    parser.add_argument("--tasks", default="energy,cluster", help="the pretrainings' tasks (names the methods)")
    parser.add_argument("--fractions", type=comma_list(float), default=[0.1])
    parser.add_argument("--seeds", type=comma_list(int), default=[0])
    parser.add_argument("--modes", type=comma_list(), default=["probe", "finetune"])
    parser.add_argument("--scratch-from", type=Path, help="a scaling-layout work folder whose scratch cells to link")
    parser.add_argument("--steps", default="cells,baseline,report")
    parser.add_argument("--archive", type=Path, help="copy the report and cells here")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[], metavar="NAME=WORK",
                        help="a further arm: another experiments.in_domain --work whose fold runs (e.g. a second "
                             "stage with other tasks) are compared with the pool-only twin, --in-domain and scratch")
    parser.add_argument("--name", default="", help="suffix of this grid's method names (e.g. second-stage): "
                        "keeps its rows apart from another grid's in the baseline summary")
    args = parser.parse_args(argv)
    work, steps = args.work, args.steps.split(",")
    work.mkdir(parents=True, exist_ok=True)
    copy_manifest(work, CORPUS, args.manifest)
    # Linked scratch cells record their grid's manifest path: the arms' cells must name the same one.
    grid_manifest = args.scratch_from / f"{CORPUS}.csv" if args.scratch_from else None
    if grid_manifest and grid_manifest.read_bytes() != args.manifest.read_bytes():
        raise SystemExit(f"--scratch-from {args.scratch_from}: its {grid_manifest.name} is not --manifest "
                         f"{args.manifest}: its scratch cells are of another labelled set")
    if "cells" in steps:
        arms = [(arm, args.in_domain) for arm in ARMS] + args.variant
        for mode in args.modes:
            if args.scratch_from:
                share_scratch_cells(scratch_folder(args.scratch_from, CORPUS, ENCODER, mode),
                                    scratch_folder(work, CORPUS, ENCODER, mode))
            for arm, folder in arms:
                timed(work, f"{mode}_{arm}", run_cells, work, CORPUS, ENCODER, mode, Rung(arm, float("inf")),
                      args.fractions, args.seeds, 4, arm_pretrained(folder, arm), grid_manifest)
    if "baseline" in steps:
        timed(work, "baseline", run_baseline, work, CORPUS, args.fractions, args.seeds, 4, ("egemaps",))
    if "report" in steps:
        cells = measured_cells(work, args.tasks, args.name, tuple(name for name, _ in args.variant))
        text = report(cells, args.tasks, args.name)
        for folder in [work, *([args.archive] if args.archive else [])]:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / "in_domain.md", lambda tmp: tmp.write_text(text))
            write_atomic(folder / "cells.csv", lambda tmp: cells.drop(columns=["arm"]).to_csv(
                tmp, index=False, float_format="%.4f"))
        print(text)


if __name__ == "__main__":
    main()
