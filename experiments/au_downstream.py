"""Does a better AU task make a better encoder? The same encoder pretrained on the same pool twice, once with the
hand-written EMFACS rules' AU labels and once with the learned face-emotion mapping's, then fine-tuned and probed
on RAVDESS cell for cell.

    .venv/bin/python -m experiments.au_downstream --work WORK --scaling SCALING_WORK
        [--fractions 0.1,0.25] [--seeds 0] [--modes probe,finetune] [--steps label,pretrain,cells,baseline,report]
        [--archive DIR]

``SCALING_WORK`` is a work folder of :mod:`experiments.scaling` whose ``prepare`` and ``extract`` steps have run
(the extracted pool and ``ravdess.csv``); nothing in it is written. Steps, each resumable:

1. ``label``: the pool labelled twice with ``energy,face,au`` into ``WORK/pretrain_data/<mapping>``, the AU task's
   ``mapping`` set to ``rules`` and ``learned`` (the shipped default mapping); energy and face labels are the same
   in both, so the two encoders differ only in their AU labels.
2. ``pretrain``: the scaling experiment's cnn and recipe on each (``--epochs`` passes over the segments).
3. ``cells``: RAVDESS's probe and fine-tuning grids (the scaling recipe, 4 speaker folds) per encoder; scratch
   cells do not depend on the pretraining, so they are trained once and linked into both.
4. ``baseline``: eGeMAPS + logistic regression on the same folds, seeds and label subsets.
5. ``report``: ``WORK/au_downstream.md`` and ``cells.csv``: learned - rules per mode and fraction (pretrained
   cells matched on fold and seed, 95% intervals over cells and over fold means), each encoder against scratch,
   and every row against eGeMAPS.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from avpretext.common.cli import CommandParser, comma_list
from avpretext.common.io import write_atomic
from data_prep.segments import SEGMENTS_FILE, load_segments
from experiments.ravdess_results import timed
from experiments.scaling import (BATCH_SIZE, Rung, copy_manifest, label_pool, measured_arms, pretrain_encoder,
                                 run_baseline, run_cells)
from finetune.experiment_report import (COMPARISON_HEADER, baseline_comparison_rows, comparison_rows,
                                        paired_differences)

TASKS = "energy,face,au"
MAPPINGS = ("rules", "learned")
ENCODER = "cnn"
CORPUS = "ravdess"


def label(work: Path, scaling: Path, mapping: str) -> Path:
    data = work / "pretrain_data" / mapping
    if not (data / SEGMENTS_FILE).exists():
        label_pool(scaling / "pool_extract", TASKS, dest=data, overrides={"au": {"mapping": mapping}})
    return data


def pretrain(work: Path, mapping: str, epochs: float) -> Path:
    data = work / "pretrain_data" / mapping
    steps = int(round(epochs * len(load_segments(data)) / BATCH_SIZE))
    return pretrain_encoder(data, work / "pretrain" / ENCODER / mapping, ENCODER, TASKS, steps)


def measured_cells(work: Path) -> pd.DataFrame:
    """Every finished cell of both encoders' grids (with a ``mapping`` column) and of the baseline."""
    return measured_arms(work, CORPUS, ENCODER, MAPPINGS, "mapping")


def report(cells: pd.DataFrame, label_stats: dict) -> str:
    neural = cells[cells["mapping"] != "none"]
    pretrained = neural[neural["init"] == "pretrained"]
    learned_vs_rules = paired_differences(pretrained, by="mapping", treated="learned", baseline="rules")
    scratch = neural[(neural["init"] == "scratch") & (neural["mapping"] == "rules")]
    lines = ["# Does a better AU task make a better encoder? (RAVDESS, 4 speaker folds)", "",
             "AU labels of the pool per mapping (segments; the rest have no face):", ""]
    lines += [f"- {m}: {s}" for m, s in label_stats.items()]
    lines += ["", "Mean UAR (%) per encoder:", "", "| mode | labels | rules | learned | scratch | n |",
              "|---|---|---|---|---|---|"]
    for (mode, fraction), group in neural.groupby(["mode", "fraction"]):
        mean = {m: 100 * group[(group["mapping"] == m) & (group["init"] == "pretrained")]["uar"].mean()
                for m in MAPPINGS}
        n = int(((group["mapping"] == "learned") & (group["init"] == "pretrained")).sum())
        lines.append(f"| {mode} | {fraction:.0%} | {mean['rules']:.1f} | {mean['learned']:.1f} | "
                     f"{100 * scratch[(scratch['mode'] == mode) & (scratch['fraction'] == fraction)]['uar'].mean():.1f}"
                     f" | {n} |")
    lines += ["", "Paired differences, cells matched on fold and seed (UAR points; 95% CI over cells, then over "
              "fold means):", "", *COMPARISON_HEADER]
    lines += comparison_rows(learned_vs_rules, "learned - rules")
    for mapping in MAPPINGS:
        both = pd.concat([pretrained[pretrained["mapping"] == mapping], scratch], ignore_index=True)
        lines += comparison_rows(paired_differences(both.drop(columns=["mapping"])), f"{mapping} - scratch")
    baseline = cells[cells["mapping"] == "none"]
    if len(baseline):  # the scratch grid is one, listed once
        groups = {"scratch": scratch, **{m: pretrained[pretrained["mapping"] == m] for m in MAPPINGS}}
        lines += baseline_comparison_rows({k: v.drop(columns=["mapping"]) for k, v in groups.items()},
                                          baseline.drop(columns=["mapping"]))
    return "\n".join(lines) + "\n"


def au_label_stats(work: Path) -> dict:
    stats = {}
    for mapping in MAPPINGS:
        path = work / "pretrain_data" / mapping / "label_stats.json"
        if path.exists():
            au = json.loads(path.read_text()).get("tasks", {}).get("au", {})
            stats[mapping] = {"labelled": au.get("labelled"), **au.get("class_counts", {})}
    return stats


def main(argv=None) -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--scaling", type=Path, required=True, help="an experiments.scaling work folder")
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--fractions", type=comma_list(float), default=[0.1, 0.25])
    parser.add_argument("--seeds", type=comma_list(int), default=[0])
    parser.add_argument("--modes", type=comma_list(), default=["probe", "finetune"])
    parser.add_argument("--steps", default="label,pretrain,cells,baseline,report")
    parser.add_argument("--archive", type=Path, help="copy the report and cells here")
    args = parser.parse_args(argv)
    work, steps = args.work, args.steps.split(",")
    work.mkdir(parents=True, exist_ok=True)
    copy_manifest(work, CORPUS, args.scaling / f"{CORPUS}.csv")
    for mapping in MAPPINGS:
        if "label" in steps:
            timed(work, f"label_{mapping}", label, work, args.scaling, mapping)
        if "pretrain" in steps:
            timed(work, f"pretrain_{mapping}", pretrain, work, mapping, args.epochs)
    if "cells" in steps:
        for mode in args.modes:
            for mapping in MAPPINGS:
                timed(work, f"{mode}_{mapping}", run_cells, work, CORPUS, ENCODER, mode,
                      Rung(mapping, float("inf")), args.fractions, args.seeds, 4)
    if "baseline" in steps:
        timed(work, "baseline", run_baseline, work, CORPUS, args.fractions, args.seeds, 4, ("egemaps",))
    if "report" in steps:
        cells = measured_cells(work)
        text = report(cells, au_label_stats(work))
        for folder in [work, *([args.archive] if args.archive else [])]:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / "au_downstream.md", lambda tmp: tmp.write_text(text))
            write_atomic(folder / "cells.csv", lambda tmp: cells.to_csv(tmp, index=False))
        print(text)


if __name__ == "__main__":
    main()
