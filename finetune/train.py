"""Fine-tune and evaluate a speech encoder for emotion recognition, speaker-independently.

    python finetune/train.py --manifest M.csv --init RUN|DIR|scratch --out OUT [--mode finetune|probe|lrprobe] ...
    accelerate launch finetune/train.py ...           # the same, data-parallel

For each split of the protocol (``finetune.splits``: the manifest's own split, or speaker folds in which
every speaker is tested once) the model is trained on the (optionally subsampled) training speakers, selected
on dev speakers by a smoothed dev UAR, and scored once on the test speakers. Outputs::

    OUT/config.json                 the resolved config
    OUT/<split>/metrics.json        test (and best dev) scores of that split; confusion.png; history.jsonl
    OUT/<split>/model/              encoder (save_pretrained) + head + labels: what finetune/predict.py loads
    OUT/metrics.json                pooled over splits (confusion summed) + per-split mean/std; confusion.png

Modes: ``finetune`` trains encoder and head (the encoder with its own learning rate; a pretrained encoder
can be frozen for the first epochs); ``probe`` freezes the encoder and trains only the head on its pooled
embeddings, computed once (SUPERB-style linear probe); ``lrprobe`` trains nothing by gradient: the frozen
encoder's per-file statistics of every hidden state go to the classic baseline's classifier (standardised,
class-balanced logistic regression, C chosen on the dev speakers; ``finetune.layer_statistics``), so it
writes no ``model/`` folder.

This module runs every split and is the command line; the parts live in modules with one job each:
``finetune.config`` (the options), ``finetune.model`` (model, --init, model folders), ``finetune.losses``,
``finetune.loop`` (one split), ``finetune.probe_cache`` (probe embeddings), ``finetune.metrics``.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np

from avpretext.common.audio import audio_error, AudioError
from avpretext.common.cli import command_name, parse_config
from avpretext.common.distributed import die_with_launcher, finish_processes
from avpretext.common.environment import record_environment
from avpretext.common.io import check_output_folder, write_json_atomic
from avpretext.common.run_lock import hold_run_lock
from finetune.auxiliary import check_auxiliary
from finetune.chunking import check_chunking
from finetune.config import MODES, RUN_CONFIG_FILE, FinetuneConfig
from finetune.fusion import check_fusion
from finetune.layer_statistics import check_lrprobe
from finetune.data import Targets, resolve_targets
from finetune.loop import train_split
from finetune.losses import check_mixup
from finetune.metrics import metrics_from_confusion, plot_confusion
from finetune.model import resolve_init
from finetune.recipes import load_manifest
from finetune.selection import check_selection
from finetune.splits import Split, make_splits

# ----------------------------------------------------------------------------------------------------------
# All splits.

PROG = command_name("finetune/train.py", "avpretext-finetune")  # in usage and error lines
SUMMARY_KEYS = ("accuracy", "uar", "macro_f1", "macro_precision", "macro_recall", "mean_ccc")


def summarize(results: list[dict], targets: Targets) -> dict:
    """Pooled test scores over splits (confusions summed) and the per-split mean/std of each score."""
    summary = {"splits": {r["split"]: r["test"] for r in results}}
    for key in SUMMARY_KEYS:
        values = [r["test"][key] for r in results if key in r["test"]]
        if values:
            summary[f"{key}_mean"] = float(np.mean(values))
            summary[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    if targets.categorical:
        summary["pooled"] = metrics_from_confusion(np.sum([r["test"]["confusion"] for r in results], axis=0),
                                                   targets.class_names)
    # A file skipped in several folds (as training data in one, test data in another) is listed once.
    summary["skipped_bad_audio"] = [list(item) for item in dict.fromkeys(
        tuple(s) for r in results for s in r["skipped_bad_audio"])]
    return summary


def select_splits(splits: list[Split], fold: str) -> list[Split]:
    """``all``, or the splits named in a comma list (``0,3`` and ``fold0,fold3`` are the same)."""
    if str(fold) == "all":
        return splits
    names = [s.name for s in splits]
    wanted = [f if f in names else f"fold{f}" for f in str(fold).split(",") if f]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise ValueError(f"--fold {fold}: no split {missing}; the protocol gives {names}")
    return [s for s in splits if s.name in wanted]


def load_splits(config: FinetuneConfig) -> tuple[Targets, list[Split]]:
    """The manifest's targets and the protocol's splits (only ``config.fold``'s unless it is ``all``)."""
    if config.mode not in MODES:
        raise ValueError(f"unknown mode {config.mode!r}; choose from {MODES}")
    check_mixup(config)
    manifest = load_manifest(config.manifest)
    check_auxiliary(config, manifest, config.manifest)
    check_chunking(config)
    check_fusion(config)
    check_selection(config)
    check_lrprobe(config)
    targets = resolve_targets(manifest, config.classes, config.dimensions, config.manifest)
    if targets.categorical:
        manifest = manifest[manifest["label"].isin(targets.class_names)].reset_index(drop=True)
    splits = make_splits(manifest, config.protocol, config.num_folds, config.dev_speakers, config.split_seed,
                         config.manifest, "label" if targets.categorical else None, config.dev_min_per_class)
    selected = select_splits(splits, config.fold)
    if not config.skip_bad_audio:  # before any training (or an experiment's first cell), not at its split
        used = dict.fromkeys(p for s in selected for part in (s.train, s.dev, s.test) for p in part["path"])
        missing = next((path for path in used if not Path(path).is_file()), None)
        if missing is not None:
            raise audio_error(missing, FileNotFoundError())
    return targets, selected


def check_init(config: FinetuneConfig) -> None:
    """ValueError when ``--init``/``--encoder``/``--encoder-options`` cannot give an encoder: checked once
    before anything is written (each split builds its own encoder later)."""
    try:
        encoder, _, _ = resolve_init(config)
    except (TypeError, OSError) as err:  # a mistyped option, an encoder folder with missing files
        raise ValueError(f"--init {config.init}: {type(err).__name__}: {err}") from None
    check_mixup(config, encoder)


def run(config: FinetuneConfig) -> dict:
    """Fine-tune and test on every selected split; write OUT (see the module docstring); return the summary.
    OUT is held (``OUT/run.lock``, :mod:`avpretext.common.run_lock`) while the run writes it."""
    from accelerate import Accelerator

    die_with_launcher()
    out = check_output_folder(config.out)
    targets, splits = load_splits(config)
    check_init(config)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    with hold_run_lock(out, accelerator):
        if accelerator.is_main_process:
            write_json_atomic(out / RUN_CONFIG_FILE, dataclasses.asdict(config))
            record_environment(out)
        results = [train_split(config, split, targets, out / split.name, accelerator) for split in splits]
        summary = summarize(results, targets) | {"classes": targets.class_names, "dimensions": targets.dimensions}
        if accelerator.is_main_process:
            write_json_atomic(out / "metrics.json", summary)
            if targets.categorical:
                plot_confusion(summary["pooled"]["confusion"], targets.class_names, out / "confusion.png",
                               f"pooled over {len(results)} split(s): UAR {summary['pooled']['uar']:.3f}")
    return summary


def parse_args(argv=None) -> FinetuneConfig:
    return parse_config(FinetuneConfig, argv, "Fine-tune and evaluate a speech encoder for SER.", required=("manifest",),
                        prog=PROG)


def main(argv=None) -> int:
    config = parse_args(argv)
    try:
        summary = run(config)
        finish_processes()
    except (ValueError, AudioError, NotADirectoryError) as err:  # user/input errors: one line, exit 2
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    if summary.get("pooled"):
        pooled = summary["pooled"]
        print(f"test (pooled over {len(summary['splits'])} split(s)): UAR {pooled['uar']:.3f}  "
              f"accuracy {pooled['accuracy']:.3f}  macro-F1 {pooled['macro_f1']:.3f}  -> {config.out}/metrics.json")
    else:
        print(f"test mean CCC {summary.get('mean_ccc_mean', float('nan')):.3f} -> {config.out}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
