"""Frozen encoders read like openSMILE: every hidden state's statistics + the baseline's own classifier.

    python -m experiments.layer_probe --manifest runs/scaling/ravdess.csv --corpus ravdess --work runs/lrprobe \
        --encoder pool=docs/results/baseline/ravdess_second_stage/pretrain/pool/encoder [--encoder NAME=DIR ...] \
        [--fractions 0.1,0.25,1] [--seeds 0,1,2] [--archive docs/results/baseline/ravdess_lrprobe]

For each named encoder, one grid of :mod:`finetune.experiment` in ``WORK/<name>`` with modes ``lrprobe``
(:mod:`finetune.layer_statistics`: the encoder frozen, mean and standard deviation of each hidden state per
file, standardised, class-balanced logistic regression with C chosen on the dev speakers; its scratch twin the
same architecture with random weights) and ``egemaps`` (the same classifier on eGeMAPS functionals), on the
splits and label subsets of the baseline grid (4 speaker folds, 2 dev speakers, split seed 0). A difference
between the two modes is a difference of features alone. Resumable: finished cells are kept.

Writes ``ARCHIVE/cells.csv`` (a ``method`` column per configuration, the layout :mod:`experiments.baseline`
folds into ``docs/results/baseline/summary.csv``) and ``ARCHIVE/layer_probe.md``: UAR per method and fraction,
pretrained minus scratch, every method minus eGeMAPS and, where the baseline archive has them, minus ComParE,
paired cell for cell with 95% intervals over fold means.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from avpretext.common.audio import AudioError
from avpretext.common.cli import CommandParser, comma_list
from avpretext.common.io import write_atomic
from finetune.baseline import BASELINE_INIT
from finetune.experiment import base_config, finished_cells, run_grid
from finetune.experiment_report import (CELL_KEY, COMPARISON_HEADER, baseline_comparison_rows, collect, comparison_rows,
                                        paired_differences)

REPO = Path(__file__).resolve().parents[1]
# The baseline grid's split settings (experiments/baseline.py, experiments/scaling.py): the same folds, dev
# speakers and label subsets, so every cell pairs with the archived eGeMAPS and ComParE cells.
SPLIT_SETTINGS = ["protocol=folds", "num_folds=4", "dev_speakers=2", "split_seed=0"]
MODES = ["lrprobe", "egemaps"]


def parse_encoder(text: str) -> tuple[str, str]:
    name, _, folder = text.partition("=")
    if not name or not folder or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"--encoder {text!r}: give NAME=ENCODER_DIR (NAME of letters, digits, - or _)")
    return name, folder


def method_name(encoder: str, init: str) -> str:
    """``lrprobe-<encoder>`` for a pretrained cell, ``lrprobe-scratch-<encoder>`` for its random twin."""
    return f"lrprobe-{encoder}" if init == "pretrained" else f"lrprobe-scratch-{encoder}"


def run(manifest: str, work: Path, encoders: dict[str, str], fractions, seeds, settings=()) -> pd.DataFrame:
    """Every encoder's grid (resumed); all finished cells with ``encoder`` and ``method`` columns."""
    base = base_config(manifest, SPLIT_SETTINGS + list(settings))
    parts = []
    for name, folder in encoders.items():
        grid = work / name
        run_grid(base, folder, grid, MODES, fractions, seeds)
        cells = collect(grid, finished_cells(grid))
        cells["method"] = [mode if init == BASELINE_INIT else method_name(name, init)
                           for mode, init in zip(cells["mode"], cells["init"])]
        parts.append(cells.assign(encoder=name))
    table = pd.concat(parts, ignore_index=True)
    return table.drop_duplicates(CELL_KEY)


def report(cells: pd.DataFrame, corpus: str, archived_baseline: Path | None = None) -> str:
    """Markdown: UAR per method and fraction; pretrained - scratch; each method minus eGeMAPS (and ComParE)."""
    lines = [f"# Layer-statistics probe on {corpus}", "", "| method | labels | cells | UAR (%) |", "|---|---|---|---|"]
    for (method, fraction), part in cells.groupby(["method", "fraction"]):
        lines.append(f"| {method} | {fraction:.0%} | {len(part)} | {100 * part['uar'].mean():.1f} |")
    neural = cells[cells["mode"] == "lrprobe"]
    lines += ["", "Pretrained minus its scratch twin (UAR points, paired on fraction, fold and seed):", "",
              *COMPARISON_HEADER]
    for name, part in neural.groupby("encoder"):
        lines += comparison_rows(paired_differences(part.drop(columns=["method", "encoder"])), name)
    groups = {method: part.drop(columns=["method", "encoder"]) for method, part in neural.groupby("method")}
    baselines = [("egemaps", "eGeMAPS", cells[cells["mode"] == "egemaps"].drop(columns=["method", "encoder"]))]
    if archived_baseline is not None and archived_baseline.is_file():
        archived = pd.read_csv(archived_baseline)
        baselines.append(("compare", "ComParE (archived cells)", archived[archived["mode"] == "compare"]))
    for mode, label, reference in baselines:
        if len(reference):
            lines += ["", f"Minus {label} + logistic regression, paired cell for cell:", "", *COMPARISON_HEADER]
            lines += baseline_comparison_rows(groups, reference, mode, label)
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--corpus", required=True, help="the corpus's name in the summary (ravdess, baved)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--encoder", action="append", required=True, metavar="NAME=DIR",
                        help="an exported encoder (or pretext run) to read; repeat for more")
    parser.add_argument("--fractions", type=comma_list(float), default=[0.1, 0.25, 1.0])
    parser.add_argument("--seeds", type=comma_list(int), default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a finetune option for every cell, e.g. --set probe_layers=last")
    parser.add_argument("--archive", type=Path, default=None,
                        help="where cells.csv and layer_probe.md go (default ARCHIVE = WORK)")
    args = parser.parse_args(argv)
    try:
        encoders = dict(parse_encoder(text) for text in args.encoder)
    except ValueError as err:
        parser.error(str(err))
    try:
        cells = run(args.manifest, args.work, encoders, args.fractions, args.seeds, args.set)
    except (ValueError, AudioError) as err:  # a missing encoder or manifest, cells of other settings: one line
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    archive = args.archive or args.work
    archive.mkdir(parents=True, exist_ok=True)
    cells = cells.assign(corpus=args.corpus)
    write_atomic(archive / "cells.csv", lambda tmp: cells.drop(columns=["encoder"]).to_csv(
        tmp, index=False, float_format="%.4f"))
    text = report(cells, args.corpus, REPO / "docs" / "results" / "baseline" / "cells" / f"{args.corpus}.csv")
    write_atomic(archive / "layer_probe.md", lambda tmp: tmp.write_text(text))
    print(text)


if __name__ == "__main__":
    main()
