"""The data-efficiency experiment: {scratch, pretrained} x label fractions x speaker folds x seeds, per mode.

    python finetune/experiment.py --manifest M.csv --pretrained RUN/encoder --out EXP \
        [--fractions 0.1,0.25,0.5,1] [--seeds 0,1,2] [--modes finetune,probe] [--folds all] \
        [--set epochs=20 --set lr=0.001 ...]

Every cell is one :func:`finetune.loop.train_split` run written to ``EXP/cells/<cell>/metrics.json``; a
rerun skips finished cells (resumable). Each cell records its resolved config in ``cells/<cell>/config.json``
first; a rerun whose settings differ from a finished cell's on anything but :data:`RESULT_NEUTRAL_FIELDS` is
refused before any training, naming the differences, and so are folders with cells that record no config:
the reports summarise every cell in the folder and must not mix settings. The scratch model of each comparison has the pretrained encoder's
exact architecture (:func:`finetune.model.scratch_twin`) and sees the same fold, seed and label subset, so
pretrained - scratch is a paired difference. ``--pretrained`` may contain ``{fold}`` (e.g.
``runs/pre_{fold}/encoder``) when each fold has its own pretraining that excludes the fold's test speakers
(experiments/in_domain.py); a fold whose dev or test speakers its pretraining data record as heard
(``in_domain.json``) is refused before any cell.

Modes ``egemaps`` and ``compare`` are the classic baseline (:mod:`finetune.baseline`: openSMILE functionals,
logistic regression with C chosen on the dev speakers), one cell (init ``logreg``) per fraction, fold and
seed, on the same label subsets; they need no ``--pretrained``.

Writes the reports of :mod:`finetune.experiment_report`: ``EXP/cells.csv`` (one row per cell), ``EXP/summary.csv`` and ``EXP/summary.md`` (mean +- std per
mode/init/fraction), ``EXP/paired.csv`` (pretrained - scratch with 95% confidence intervals),
``EXP/vs_egemaps.csv`` (every mode and init minus the eGeMAPS cell of the same fraction, fold and seed, when
the folder has eGeMAPS cells; also in summary.md) and ``EXP/data_efficiency.png``.
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from avpretext.common.audio import AudioError
from avpretext.common.cli import CommandParser, comma_list, command_name
from avpretext.common.distributed import die_with_launcher, finish_processes
from avpretext.common.environment import record_environment
from avpretext.common.io import check_output_folder, write_json_atomic
from encoders import ENCODER_CONFIG_FILE, WEIGHTS_FILE
from finetune.baseline import BASELINE_INIT, BASELINE_MODES, baseline_settings, run_baseline_cell
from finetune.config import MODES, RUN_CONFIG_FILE, FinetuneConfig
from finetune.experiment_report import INITS, collect, write_reports
from finetune.loop import train_split
from finetune.model import encoder_folder, scratch_twin
from finetune.opensmile_features import Functionals
from finetune.train import check_init, load_splits
from pretext.config import RUN_CONFIG_FILE as PRETRAINING_CONFIG_FILE

PROG = command_name("finetune/experiment.py", "avpretext-experiment")  # in usage and error lines
# FinetuneConfig fields that never change a cell's results: where it is written and how it is run (loader
# workers do not change the seeded crops: tested in test_finetune.py). Every other field of a finished cell's
# config must equal what this run would use, or the run is refused: results made otherwise never mix.
RESULT_NEUTRAL_FIELDS = ("out", "progress", "num_workers", "save_model")
# In a pretraining's data folder: the corpus speakers whose audio it holds (experiments/in_domain.py adds a fold's
# training speakers to the pool). The grid refuses a fold whose dev or test speakers are among them.
IN_DOMAIN_RECORD = "in_domain.json"
# Read only for a pretrained encoder (its learning-rate multiplier, its frozen epochs): scratch cells ignore
# them, so ablations that vary only these share their scratch cells (experiments/ravdess_results.py).
PRETRAINED_ONLY_FIELDS = ("encoder_lr_mult", "freeze_epochs")
# Options whose default changed behaviour when they were added: a cell recorded without one ran as this value,
# not as today's default (before dev_min_per_class, dev parts were the seeded speakers alone).
VALUE_BEFORE_OPTION = {"dev_min_per_class": 0}


@dataclass(frozen=True)
class Cell:
    mode: str
    init: str  # scratch | pretrained
    fraction: float
    fold: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.mode}-{self.init}-f{self.fraction:g}-{self.fold}-s{self.seed}"


def grid(modes, fractions, folds, seeds) -> list[Cell]:
    """Cells ordered so that a partial run already holds complete pretrained/scratch pairs. A baseline mode
    (``egemaps``, ``compare``: :mod:`finetune.baseline`) has one cell per fraction, fold and seed."""
    return [Cell(mode, init, fraction, fold, seed) for mode in modes for fraction in fractions for fold in folds
            for seed in seeds for init in ((BASELINE_INIT,) if mode in BASELINE_MODES else INITS)]


def is_baseline(cell: Cell) -> bool:
    return cell.mode in BASELINE_MODES


def cell_config(base: FinetuneConfig, cell: Cell, pretrained: str, out: Path) -> FinetuneConfig:
    """The fine-tuning config of one cell: pretrained init, or its architecture from scratch."""
    encoder_dir = pretrained.format(fold=cell.fold)
    if cell.init == "pretrained":
        init, encoder, options = encoder_dir, base.encoder, base.encoder_options
    else:
        encoder, options = scratch_twin(encoder_dir)
        init = "scratch"
    return dataclasses.replace(base, init=init, encoder=encoder, encoder_options=options, mode=cell.mode,
                               label_fraction=cell.fraction, fold=cell.fold, seed=cell.seed, out=str(out),
                               save_model=False)


def compared_settings(config: FinetuneConfig) -> dict:
    """The fields of a cell's config that its results depend on, as JSON values."""
    ignored = RESULT_NEUTRAL_FIELDS + (PRETRAINED_ONLY_FIELDS if config.init == "scratch" else ())
    return {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(config))).items() if k not in ignored}


def setting_differences(saved: dict, config: FinetuneConfig) -> list[str]:
    """``field: old -> new`` for every result-changing field on which a recorded config and ``config`` differ."""
    current = compared_settings(config)
    ignored = set(dataclasses.asdict(config)) - set(current)
    keys = sorted((set(current) | set(saved)) - ignored)
    absent = "<absent>"
    # A field missing from a recorded config is an option added since: the cell ran with its default (or with
    # the behaviour from before the option, VALUE_BEFORE_OPTION).
    defaults = compared_settings(FinetuneConfig()) | VALUE_BEFORE_OPTION
    saved = {k: saved.get(k, defaults.get(k, absent)) for k in keys}
    return [f"{k}: {json.dumps(saved.get(k, absent))} -> {json.dumps(current.get(k, absent))}"
            for k in keys if saved.get(k, absent) != current.get(k, absent)]


def check_finished_cells(base: FinetuneConfig, pretrained: str, out: Path) -> None:
    """Refuse (ValueError, before any training) when a finished cell in ``out`` was made with other settings
    than this run would use for it, or records none: the reports cover every cell in the folder, so it
    would be summarised, paired and averaged with this run's cells."""
    unknown, differing = [], []
    for cell in finished_cells(out):
        folder = out / "cells" / cell.name
        if not (folder / RUN_CONFIG_FILE).exists():
            unknown.append(cell.name)
            continue
        saved = json.loads((folder / RUN_CONFIG_FILE).read_text())
        if is_baseline(cell):
            differences = baseline_differences_of(saved, baseline_config(base, cell, folder))
        elif not pretrained:
            raise ValueError(f"{out} holds {cell.mode} cells: give their --pretrained encoder to add cells "
                             "beside them (or use a new --out)")
        else:
            differences = setting_differences(saved, cell_config(base, cell, pretrained, folder))
        if differences:
            differing.append(f"{cell.name} ({', '.join(differences)})")
    if differing:
        shown = "; ".join(differing[:3]) + (f"; and {len(differing) - 3} more" if len(differing) > 3 else "")
        raise ValueError(f"{out}: {len(differing)} finished cell(s) were made with other settings, and results "
                         f"would mix: {shown}. Rerun with their settings, or use a new --out")
    if unknown:
        raise ValueError(f"{out}: {len(unknown)} finished cell(s) (e.g. {unknown[0]}) have no {RUN_CONFIG_FILE}: "
                         "their settings, which are unknown, cannot be checked against this run's; "
                         "use a new --out")


def baseline_config(base: FinetuneConfig, cell: Cell, out: Path) -> FinetuneConfig:
    """The config of a baseline cell (only :data:`finetune.baseline.BASELINE_FIELDS` matter)."""
    return dataclasses.replace(base, init=BASELINE_INIT, mode=cell.mode, label_fraction=cell.fraction,
                               fold=cell.fold, seed=cell.seed, out=str(out), save_model=False)


def baseline_differences_of(saved: dict, config: FinetuneConfig) -> list[str]:
    """``field: old -> new`` where a baseline cell's recorded settings differ from this run's."""
    current = baseline_settings(config)
    saved = VALUE_BEFORE_OPTION | saved
    return [f"{k}: {json.dumps(saved.get(k))} -> {json.dumps(v)}" for k, v in current.items() if saved.get(k) != v]


def check_pretrained(pretrained: str, folds) -> None:
    """Every fold's ``--pretrained`` encoder exists (also the scratch twins' architecture), before any cell."""
    for fold in folds:
        folder = encoder_folder(pretrained.format(fold=fold))
        if not (folder / ENCODER_CONFIG_FILE).is_file():
            raise ValueError(f"--pretrained {pretrained}" + (f" (fold {fold})" if "{fold}" in pretrained else "")
                             + f": {folder} holds no exported encoder ({ENCODER_CONFIG_FILE} + {WEIGHTS_FILE})")


def check_pretraining_speakers(pretrained: str, splits) -> None:
    """ValueError when a fold's pretraining data hold audio of that fold's dev or test speakers, as their
    :data:`IN_DOMAIN_RECORD` says: in-domain pretraining made for other folds (other split options or another
    manifest) would otherwise leak the evaluated speakers silently. Folds without a record are not checked."""
    for split in splits:
        encoder = encoder_folder(pretrained.format(fold=split.name))
        config = encoder.parent / PRETRAINING_CONFIG_FILE  # of the pretext run that exported it
        data = json.loads(config.read_text()).get("data") if encoder.name == "encoder" and config.is_file() else ""
        if not data:
            continue
        record = (Path(data) if Path(data).is_dir() else Path(data).parent) / IN_DOMAIN_RECORD
        if not record.is_file():
            continue
        held_out = set(split.dev["speaker"]) | set(split.test["speaker"])
        leaked = sorted(held_out & set(json.loads(record.read_text())["train_speakers"]))
        if leaked:
            raise ValueError(f"--pretrained {pretrained} ({split.name}): its pretraining data ({record.parent}) hold "
                             f"audio of speakers {leaked}, whom this grid's {split.name} uses for dev or test; "
                             "make the in-domain pretraining with the grid's manifest and --set split options")


def run_grid(base: FinetuneConfig, pretrained: str, out: Path, modes, fractions, seeds, folds="all",
             log=print) -> pd.DataFrame:
    """Run every unfinished cell; return the table of all finished cells (also written as ``cells.csv``).

    Refused before any training when the folder holds finished cells made with other settings
    (:func:`check_finished_cells`); each cell trained records its config in ``cells/<cell>/config.json``.
    """
    from accelerate import Accelerator  # heavy (seconds to import): only a run of the grid needs it

    die_with_launcher()
    out = check_output_folder(out)
    unknown = [m for m in modes if m not in (*MODES, *BASELINE_MODES)]
    if unknown:
        raise ValueError(f"--modes: unknown mode(s) {unknown}; choose from {[*MODES, *BASELINE_MODES]}")
    neural = [m for m in modes if m not in BASELINE_MODES]
    if neural and not pretrained:
        raise ValueError(f"--modes {','.join(neural)} need --pretrained (only {list(BASELINE_MODES)} run without)")
    # Checked at every fraction of the grid, not at the base's label_fraction (1.0 unless set): an option valid
    # only below 1 (the semi-supervised cluster loss) is right for a grid of 10% cells and wrong for a 100% cell.
    for fraction in sorted(set(fractions)) or [base.label_fraction]:
        targets, splits = load_splits(dataclasses.replace(base, fold=str(folds), label_fraction=fraction))
    if len(neural) < len(modes) and not targets.categorical:
        raise ValueError(f"--modes {[m for m in modes if m in BASELINE_MODES]}: the baseline classifies; "
                         f"the manifest's targets are dimensions {targets.dimensions}")
    by_name = {s.name: s for s in splits}
    if pretrained:
        check_pretrained(pretrained, {*by_name, *(c.fold for c in finished_cells(out) if not is_baseline(c))})
        check_pretraining_speakers(pretrained, splits)
    check_finished_cells(base, pretrained, out)
    if neural:  # options the encoder cannot take (log-mel mixup on a waveform encoder) refused before any cell
        check_init(dataclasses.replace(base, init=pretrained.format(fold=next(iter(by_name)))))
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=base.mixed_precision)
    cells = grid(modes, fractions, list(by_name), seeds)
    done = sum((out / "cells" / c.name / "metrics.json").exists() for c in cells)
    log(f"{len(cells)} cells ({done} already finished) in {out}")
    started = time.perf_counter()
    functionals = {}  # one openSMILE extractor (and its disk cache) per baseline feature set
    for i, cell in enumerate(cells):
        folder = out / "cells" / cell.name
        if (folder / "metrics.json").exists():
            continue
        t0 = time.perf_counter()
        if is_baseline(cell):
            config = baseline_config(base, cell, folder)
            if accelerator.is_main_process:
                folder.mkdir(parents=True, exist_ok=True)
                write_json_atomic(folder / RUN_CONFIG_FILE, baseline_settings(config))
                record_environment(folder)
            if cell.mode not in functionals:
                functionals[cell.mode] = Functionals(cell.mode)
            result = run_baseline_cell(config, by_name[cell.fold], targets, folder, functionals[cell.mode],
                                       write=accelerator.is_main_process)
            log(f"[{i + 1}/{len(cells)}] {cell.name}: test UAR {result['test']['uar']:.3f} (C {result['C']:g}, "
                f"{time.perf_counter() - t0:.0f} s)")
            continue
        config = cell_config(base, cell, pretrained, folder)
        if accelerator.is_main_process:  # before the metrics that mark the cell finished
            folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(folder / RUN_CONFIG_FILE, dataclasses.asdict(config))
            record_environment(folder)
        result = train_split(config, by_name[cell.fold], targets, folder, accelerator)
        log(f"[{i + 1}/{len(cells)}] {cell.name}: test UAR {result['test']['uar']:.3f} "
            f"({time.perf_counter() - t0:.0f} s, {time.perf_counter() - started:.0f} s so far)")
    table = collect(out, finished_cells(out))  # this grid's cells and any other finished in the folder
    if accelerator.is_main_process:
        write_reports(table, out)
    return table


_CELL_NAME = re.compile(r"^(?P<mode>[a-z]+)-(?P<init>scratch|pretrained|logreg)-f(?P<fraction>[0-9.e+-]+)"
                        r"-(?P<fold>.+)"
                        r"-s(?P<seed>-?\d+)$")


def finished_cells(out: Path) -> list[Cell]:
    """Every finished cell in ``out``, whichever grid ran it: a report covers the whole folder, so a grid
    extended later (more seeds, another fraction) is summarised with what was there."""
    cells = []
    for metrics in (out / "cells").glob("*/metrics.json"):
        match = _CELL_NAME.match(metrics.parent.name)
        if match:
            cells.append(Cell(match["mode"], match["init"], float(match["fraction"]), match["fold"],
                              int(match["seed"])))
    return sorted(cells, key=_grid_order)


def _grid_order(cell: Cell):
    return cell.mode, cell.fraction, cell.fold, cell.seed, (*INITS, BASELINE_INIT).index(cell.init)


def parse_args(argv=None):
    parser = CommandParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True, help="labelled manifest CSV (finetune.prepare)")
    parser.add_argument("--pretrained", default="",
                        help="encoder folder or pretext run; may contain {fold} (not needed by egemaps/compare)")
    parser.add_argument("--out", required=True, help="grid folder (rerun to resume: finished cells are kept)")
    parser.add_argument("--fractions", type=comma_list(float), default=[0.1, 0.25, 0.5, 1.0],
                        help="label fractions, comma-separated (default 0.1,0.25,0.5,1.0)")
    parser.add_argument("--seeds", type=comma_list(int), default=[0, 1, 2],
                        help="seeds per cell, comma-separated (default 0,1,2)")
    parser.add_argument("--modes", type=comma_list(), default=["finetune", "probe"],
                        help="finetune, probe, and the classic baselines egemaps, compare (openSMILE "
                             "functionals + logistic regression), comma-separated (default finetune,probe)")
    parser.add_argument("--folds", default="all", help="all, or a comma list of fold indices/names")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a finetune/train.py option for every cell, e.g. --set epochs=20 (JSON values)")
    return parser.parse_args(argv)


def base_config(manifest: str, settings: list[str]) -> FinetuneConfig:
    """FinetuneConfig from ``key=value`` strings: JSON values of the field's type (text fields take the text
    as it is). A value of another type is refused here, not as a traceback in the middle of the grid."""
    defaults = FinetuneConfig()
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    values = {"manifest": manifest, "progress": False}
    for item in settings:
        key, _, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in fields:
            raise ValueError(f"--set {item}: unknown option {key!r}; valid: {sorted(fields)}")
        default = getattr(defaults, key)
        if isinstance(default, str):
            values[key] = text
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ValueError(f"--set {item}: {key} must be a JSON {type(default).__name__}, not {text!r}")
        values[key] = value
    return FinetuneConfig(**values)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        base = base_config(args.manifest, args.set)
        out = Path(args.out)
        table = run_grid(base, args.pretrained, out, args.modes, args.fractions, args.seeds, args.folds)
        finish_processes()
    except (ValueError, AudioError, NotADirectoryError) as err:  # user/input errors: one line, exit 2
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print((out / "summary.md").read_text() if (out / "summary.md").exists() else "no finished cells")
    print(f"{len(table)} cells -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
