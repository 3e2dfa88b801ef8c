"""In-domain unlabelled audio in pretraining: each fold's training-speaker audio added to the pool (issue 24).

    .venv/bin/python -m experiments.in_domain --manifest M.csv --pool-labels POOL --work WORK \
        [--tasks energy,cluster,acoustic] [--folds all] [--set num_folds=4 --set dev_speakers=2 ...] \
        [--pool-only] [--continue-steps N [--continue-lr 3e-4] [--continue-tasks T]] [--encoder cnn] \
        [--steps 2000] [--lr 0.001] ...

At a label fraction below 1, most of a fold's training audio has no label in the experiment, yet it is real
in-domain speech: the semi-supervised setting of DeepEmoCluster (Lin et al. 2021) and Latif et al. For each
fold of the grid's protocol (the manifest and the ``--set`` split options of ``finetune/experiment.py``, so
the folds are the grid's), this module pretrains once on the pool plus that fold's training files (every
file of ``Split.train``: never a file of its dev or test speakers), with audio-only tasks:

    WORK/extract/                 one extraction of the selected folds' training files (audio)
    WORK/<fold>/extract/items/    links to the pool's items and to this fold's training files' items
    WORK/<fold>/labels/           one label run over both, with the pool label run's config
                                  (segments.parquet ...), in_domain.json and in_domain_files.csv
    WORK/<fold>/run/              the pretraining: give the grid  --pretrained WORK/{fold}/run
    WORK/pool/run/                (--pool-only) the same training on the pool's labels alone

Why one label run over pool + fold: ``pretext/train.py`` reads one segment table, and two of the tasks fit
corpus-level state in the label stage: the cluster task's k-means (cluster 3 of one fit is not cluster 3 of
another) and the acoustic task's standardisation. Labelling the fold's files on their own and concatenating
the tables would mix two label spaces; so the fold's files are labelled together with the pool's items, as
``data_prep label`` over one folder holding both would, and k-means is fitted once on the union. The energy
task's medians are per speaker in either case; the in-domain speakers are named ``in-domain:<speaker>`` so that
no pool speaker shares their group. The pool's cluster labels and acoustic standardisation in a fold's run
therefore come from that fold's union (part of what adding the audio changes); the pool-only twin uses the
pool label folder as it is. Cost: the pool is relabelled once per fold (the acoustic descriptors are cached
beside each item's audio, in the pool's extraction, by the first fold's run; the cluster descriptors are
recomputed).

With ``--continue-steps N`` the fold's data are used the other way round (continued, "domain-adaptive"
pretraining: Gururangan et al., "Don't Stop Pretraining", ACL 2020): the pool-only run is trained first, then
each fold's run starts from its encoder and trains N more steps on the fold's training files alone, labelled
alone (fresh heads: the fold's k-means clusters are its own; ``--continue-tasks`` may name other audio-only
tasks, e.g. the acoustic task, whose descriptors then cost the fold's files only). In the union the fold's
files are 11% of the segments of a RAVDESS fold; here they are every segment of the second stage.
``WORK/<fold>/labels`` then holds the fold's files only, and its ``in_domain.json`` says so (``pool_media`` 0,
``continued_from``).

The grid (``finetune/experiment.py``) reads each fold's ``in_domain.json`` through the run's config and refuses
a fold whose dev or test speakers the pretraining heard (folds made with other split options).

Every step is resumable (rerun the same command): the extraction skips finished items, a fold's label folder
is kept while its ``in_domain.json`` matches this run, and a pretraining resumes from its checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pandas as pd

from avpretext.common.audio import AudioError
from avpretext.common.cli import CommandParser
from avpretext.common.io import write_atomic, write_json_atomic
from data_prep import store
from data_prep.executors import ProcessExecutor
from data_prep.extract import ExtractOptions, extract_corpus
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.segments import LABEL_CONFIG_FILE, SEGMENTS_FILE, load_segments
from data_prep.sources import make_item_id
from encoders import WEIGHTS_FILE
from experiments.scaling import ENCODERS
from finetune.experiment import IN_DOMAIN_RECORD, base_config
from finetune.recipes.manifest import UNKNOWN_SPEAKERS
from finetune.splits import Split
from finetune.train import load_splits, select_splits
from pretext.config import RUN_CONFIG_FILE, TrainConfig
from pretext.train import train

PROG = "experiments/in_domain.py"
# Tasks that read audio alone: the in-domain files are speech recordings, and a face task would train on the
# pool's faces only while the added audio taught it nothing (masked).
AUDIO_TASKS = ("energy", "cluster", "acoustic")
SPEAKER_PREFIX = "in-domain:"  # in-domain speakers' names in the segment table: never a pool speaker's group
# In a fold's label folder: what its data hold (fold, speakers, files, pool); the grid checks its speakers.
RECORD_FILE = IN_DOMAIN_RECORD
FILES_FILE = "in_domain_files.csv"  # in a fold's label folder: the fold's files (path, speaker, media_id)
# FinetuneConfig fields that make folds.
SPLIT_FIELDS = ("protocol", "num_folds", "dev_speakers", "dev_min_per_class", "split_seed")


def check_tasks(tasks: list[str]) -> None:
    """ValueError unless every task reads audio alone (:data:`AUDIO_TASKS`)."""
    other = [t for t in tasks if t not in AUDIO_TASKS]
    if not tasks or other:
        raise ValueError(f"--tasks {','.join(tasks)}: " + (f"{other} need faces or are not audio-only tasks; "
                         if other else "no task; ") + f"in-domain audio trains the audio-only tasks "
                         f"{', '.join(AUDIO_TASKS)}")


@dataclasses.dataclass
class Pool:
    """The pool's label folder: its table, label config and the extraction folder of each of its items."""

    labels: Path
    table: pd.DataFrame
    label_config: dict
    items: dict[str, Path]  # media id -> its extracted item folder


def read_pool(pool_labels: str | Path, tasks: list[str]) -> Pool:
    """The pool label folder, checked: it exists, holds a finished label run with every task of ``tasks``,
    and each segment's audio is an item of an extraction folder (``EXTRACT/items/<media id>/``)."""
    folder = Path(pool_labels)
    if not folder.is_dir():
        raise ValueError(f"--pool-labels {folder}: no such folder (a `data_prep label` output folder)")
    if not (folder / SEGMENTS_FILE).is_file():
        raise ValueError(f"--pool-labels {folder}: no {SEGMENTS_FILE}; label the pool first (data_prep label)")
    table = load_segments(folder)
    config_file = folder / LABEL_CONFIG_FILE
    label_config = json.loads(config_file.read_text(encoding="utf-8"))
    missing = [t for t in tasks if t not in label_config.get("tasks", [])]
    if missing:
        raise ValueError(f"--pool-labels {folder}: labelled without {missing} (its tasks: "
                         f"{','.join(label_config.get('tasks', []))}); relabel the pool with them, so that the "
                         "pool-only pretraining it is compared with trains the same tasks")
    items = {}
    for media, audio in table.groupby("media_id", sort=True)["audio_path"].first().items():
        item = Path(audio).parent
        if item.name != media or item.parent.name != store.ITEMS_DIR or not (item / store.META_FILE).is_file():
            raise ValueError(f"--pool-labels {folder}: the audio of media {media} ({audio}) is not in an "
                             "extraction folder's items/ (was the extraction moved or deleted?)")
        items[media] = item
    return Pool(folder, table, label_config, items)


def check_pool_holds_no_manifest_file(pool: Pool, manifest_paths) -> None:
    """ValueError when a pool item was extracted from a file of the manifest: every manifest file is a test
    file of one fold, and pool-only pretraining would have seen it."""
    evaluated = {os.path.realpath(p) for p in manifest_paths}
    for media, item in pool.items.items():
        source = store.read_json(item / store.META_FILE).get("path", "")
        if source and os.path.realpath(source) in evaluated:
            raise ValueError(f"--pool-labels {pool.labels}: media {media} is {source}, a file of the manifest: "
                             "the pool must hold no evaluated audio")


def fold_files(split: Split) -> pd.DataFrame:
    """The fold's in-domain files: every row of its training part (its training speakers' files; never a
    dev or test speaker's). Columns ``path, id, speaker, manifest_speaker``; ``speaker`` is namespaced by
    :data:`SPEAKER_PREFIX` (unknown speakers stay blank, so their segments group by recording)."""
    rows = split.train.drop_duplicates("path").sort_values("path")
    speakers = [s if s in UNKNOWN_SPEAKERS else SPEAKER_PREFIX + s for s in rows["speaker"].astype(str)]
    return pd.DataFrame({"path": rows["path"].to_numpy(), "id": [make_item_id(p) for p in rows["path"]],
                         "speaker": speakers, "manifest_speaker": rows["speaker"].astype(str).to_numpy()})


def extract_files(files: pd.DataFrame, work: Path, workers: int) -> Path:
    """Extract ``files`` (``path, id, speaker``) into ``WORK/extract`` (resumable); ValueError naming the
    first file that could not be extracted: every training file must reach the fold's data."""
    source = work / "in_domain_manifest.csv"
    write_atomic(source, lambda tmp: files[["path", "id", "speaker"]].to_csv(tmp, index=False))
    out = work / "extract"
    # The scaling pool's options (10 analysed frames per second of a video; audio files have none).
    summary = extract_corpus(source, out, ExtractOptions(max_fps=10), executor=ProcessExecutor(workers),
                             progress=False)
    failed = {**summary.failed_earlier, **summary.failed}
    if failed:
        item, reason = next(iter(sorted(failed.items())))
        raise ValueError(f"{len(failed)} training file(s) could not be extracted, e.g. {item}: {reason}")
    return out


def link_items(folder: Path, items: dict[str, Path]) -> None:
    """Make ``folder/items/`` hold exactly one link per item (``media id -> item folder``); earlier links
    are replaced. Refuses to touch an entry there that is not a link."""
    root = folder / store.ITEMS_DIR
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if not entry.is_symlink():
            raise ValueError(f"{root}: {entry.name} is not a link made by this command; use a new --work")
        entry.unlink()
    for media, item in items.items():
        (root / media).symlink_to(item.resolve(), target_is_directory=True)


def fold_record(split: Split, files: pd.DataFrame, pool: Pool, tasks: list[str], manifest: str,
                split_settings: dict, config_hash: str, continued_from: str = "") -> dict:
    """What a fold's label folder holds (``in_domain.json``): a rerun keeps the folder only when it matches.
    ``continued_from``: the encoder a second stage starts from (the folder then holds no pool item)."""
    def speakers(part):
        return sorted(part["speaker"].astype(str).unique())

    record = {"fold": split.name, "manifest": os.path.abspath(manifest), "split": split_settings,
              "train_speakers": speakers(split.train), "dev_speakers": speakers(split.dev),
              "test_speakers": speakers(split.test), "files": len(files), "pool_labels": str(pool.labels.resolve()),
              "pool_media": 0 if continued_from else len(pool.items),
              "pool_segments": 0 if continued_from else len(pool.table), "tasks": tasks,
              "label_config_hash": config_hash}
    if continued_from:
        record["continued_from"] = continued_from
    return record


def label_fold(work: Path, split: Split, files: pd.DataFrame, extracted: Path, pool: Pool, tasks: list[str],
               manifest: str, split_settings: dict, continued_from: str = "", log=print) -> Path:
    """The fold's label folder ``WORK/<fold>/labels``: the pool's items and the fold's files in one label run
    (the pool's label config, restricted to ``tasks``); with ``continued_from`` (a second stage's starting
    encoder) the fold's files alone, and a task the pool was not labelled with takes its default options.
    Kept when its record matches; else relabelled."""
    overrides = {"tasks": tasks, "segmentation": pool.label_config["segmentation"],
                 "speech": pool.label_config["speech"],
                 **{t: pool.label_config[t] for t in tasks if t in pool.label_config}}
    config = build_label_config(overrides)
    folder, labels = work / split.name, work / split.name / "labels"
    record = fold_record(split, files, pool, tasks, manifest, split_settings, config.hash(), continued_from)
    record_path = labels / RECORD_FILE
    if (labels / SEGMENTS_FILE).is_file() and record_path.is_file():
        saved = json.loads(record_path.read_text(encoding="utf-8"))
        if saved == record:
            return labels
        if (folder / "run" / RUN_CONFIG_FILE).exists():
            changed = sorted(k for k in record if saved.get(k) != record[k])
            raise ValueError(f"{folder}: its pretraining was made from other data (differs on {changed}); "
                             "use a new --work")
    fold_items = {media: store.item_dir(extracted, media) for media in files["id"]}
    pool_items = {} if continued_from else pool.items
    link_items(folder / "extract", {**pool_items, **fold_items})
    log(f"{split.name}: labelling {len(pool_items)} pool items + {len(fold_items)} training files "
        f"({len(record['train_speakers'])} speakers) with {','.join(tasks)}")
    record_path.unlink(missing_ok=True)  # the record marks the folder finished: written after the table
    label_corpus(folder / "extract", config, dest=labels, progress=False)
    write_atomic(labels / FILES_FILE, lambda tmp: files.to_csv(tmp, index=False))
    write_json_atomic(record_path, record)
    return labels


def pretrain(template: TrainConfig, data: Path, run: Path) -> Path:
    """``pretext/train.py`` on ``data`` into ``run`` with the template's options (resumed when the run has
    started; skipped when its encoder is exported)."""
    if (run / "encoder" / WEIGHTS_FILE).is_file():
        return run
    # Absolute: the grid finds the data's record through the run's config.json from any working folder.
    train(dataclasses.replace(template, data=os.path.abspath(data), out=str(run),
                              resume=(run / RUN_CONFIG_FILE).exists()))
    return run


def prepare_fold_data(manifest: str, pool_labels: str | Path, work: str | Path, tasks: list[str],
                      settings: list[str] = (), folds: str = "all", workers: int = 2, continued_from: str = "",
                      pool_tasks: list[str] | None = None, log=print) -> tuple[Pool, dict[str, Path]]:
    """Each selected fold's pretraining data: the pool's items and the fold's training files labelled in one
    run (``WORK/<fold>/labels``), or the fold's files alone for a second stage from ``continued_from``.
    Returns the pool and ``{fold name: label folder}``.

    Args:
        manifest: the grid's manifest CSV; ``settings``: the grid's ``--set KEY=VALUE`` options (those of
            :data:`SPLIT_FIELDS` decide the folds, so give the grid's).
        pool_labels: the pool's ``data_prep label`` folder, labelled with every task of ``pool_tasks`` (default
            ``tasks``, as the union needs; a second stage's tasks may be others: its heads start anew).
        folds: ``all`` or a comma list of fold indices/names.
    """
    pool_tasks = tasks if pool_tasks is None else pool_tasks
    check_tasks(tasks)
    check_tasks(pool_tasks)
    base = base_config(manifest, list(settings))
    _, everything = load_splits(dataclasses.replace(base, fold="all"))
    splits = select_splits(everything, folds)
    pool = read_pool(pool_labels, pool_tasks)
    check_pool_holds_no_manifest_file(pool, [p for s in everything for part in (s.dev, s.test) for p in part["path"]])
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    files = {s.name: fold_files(s) for s in splits}
    extracted = extract_files(pd.concat(files.values()).drop_duplicates("id"), work, workers)
    split_settings = {k: getattr(base, k) for k in SPLIT_FIELDS}
    return pool, {s.name: label_fold(work, s, files[s.name], extracted, pool, tasks, manifest, split_settings,
                                     continued_from, log) for s in splits}


def pretrain_in_domain(manifest: str, pool_labels: str | Path, work: str | Path, template: TrainConfig,
                       settings: list[str] = (), folds: str = "all", pool_only: bool = False, workers: int = 2,
                       second_stage: TrainConfig | None = None, log=print) -> dict[str, Path]:
    """One pretraining per fold on the pool plus the fold's training files (:func:`prepare_fold_data`, whose
    arguments these are; the tasks are ``template.tasks``), into ``WORK/<fold>/run``.

    Args:
        template: the pretraining options; ``data``, ``out`` and ``resume`` are set per run.
        pool_only: also train ``WORK/pool/run`` on the pool's labels alone with the same options.
        second_stage: instead of the union, train ``WORK/pool/run`` first (``template``), then each fold's run
            with these options (its own tasks, e.g. the acoustic task added) on the fold's files alone,
            starting from the pool run's encoder.

    Returns:
        ``{fold name: run folder}`` (and ``pool`` with ``pool_only`` or ``second_stage``).
    """
    def task_list(config):
        return [t.strip() for t in config.tasks.split(",") if t.strip()]

    work = Path(work)
    pool_run = work / "pool" / "run"
    # Every fold's data are made (and the manifest, the pool and the tasks checked) before any training.
    fold_tasks = task_list(template if second_stage is None else second_stage)
    continued_from = str((pool_run / "encoder").resolve()) if second_stage is not None else ""
    pool, data = prepare_fold_data(manifest, pool_labels, work, fold_tasks, settings, folds, workers,
                                   continued_from, task_list(template), log)
    runs = {}
    if pool_only or second_stage is not None:  # first: a second stage starts from its encoder
        runs["pool"] = pretrain(template, pool.labels, pool_run)
        log(f"pool only: encoder in {pool_run / 'encoder'}")
    fold_template = template if second_stage is None else dataclasses.replace(second_stage,
                                                                               init_encoder=continued_from)
    for fold, labels in data.items():
        runs[fold] = pretrain(fold_template, labels, work / fold / "run")
        log(f"{fold}: encoder in {runs[fold] / 'encoder'}")
    return dict(sorted(runs.items(), key=lambda kv: kv[0] == "pool"))


def train_template(args, steps: int | None = None, lr: float | None = None, tasks: str | None = None
                   ) -> TrainConfig:
    """The pretraining options of the command line (the scaling experiment's recipe, :mod:`experiments.scaling`),
    with ``steps``, ``lr`` and ``tasks`` in place of ``--steps``, ``--lr`` and ``--tasks`` when given (a second
    stage's)."""
    options = json.loads(args.encoder_options) if args.encoder_options else ENCODERS.get(args.encoder, {})
    if not isinstance(options, dict):
        raise ValueError(f"--encoder-options {args.encoder_options}: a JSON object")
    steps, lr = steps or args.steps, lr or args.lr
    every = max(100, steps // 10)
    return TrainConfig(tasks=tasks or args.tasks, encoder=args.encoder, encoder_options=options, max_steps=steps,
                       batch_size=args.batch_size, lr=lr, warmup_steps=min(200, steps // 10),
                       max_seconds=args.max_seconds, eval_every=min(every, steps),
                       checkpoint_every=min(every, steps), log_every=min(20, steps),
                       num_workers=args.num_workers, seed=args.seed, report_to="none")


def parse_args(argv=None):
    parser = CommandParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True, help="the grid's manifest CSV (finetune.prepare)")
    parser.add_argument("--pool-labels", required=True, help="the pool's data_prep label folder")
    parser.add_argument("--work", type=Path, required=True,
                        help="output folder: WORK/<fold>/run per fold (the grid's --pretrained WORK/{fold}/run)")
    parser.add_argument("--tasks", default="energy,cluster,acoustic",
                        help=f"audio-only pretext tasks, comma-separated ({', '.join(AUDIO_TASKS)})")
    parser.add_argument("--folds", default="all", help="all, or a comma list of fold indices/names")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="the grid's finetune option, e.g. --set num_folds=4: give the grid's split options "
                             f"({', '.join(SPLIT_FIELDS)}) so that the folds are the grid's")
    parser.add_argument("--pool-only", action="store_true",
                        help="also pretrain WORK/pool/run on the pool alone with the same options (the twin)")
    parser.add_argument("--continue-steps", type=int, default=0,
                        help="second stage instead of the union: train WORK/pool/run, then each fold's run this "
                             "many steps on the fold's files alone from the pool run's encoder (0: the union)")
    parser.add_argument("--continue-lr", type=float, default=3e-4, help="the second stage's peak learning rate")
    parser.add_argument("--continue-tasks", default="", help="the second stage's tasks (default: --tasks)")
    parser.add_argument("--workers", type=int, default=2, help="extraction processes")
    parser.add_argument("--encoder", default="cnn", help="cnn | crnn | transformer")
    parser.add_argument("--encoder-options", default="",
                        help="JSON object (default: the scaling experiment's options for the encoder)")
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps per pretraining")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-seconds", type=float, default=3.0, help="training crop length (s)")
    parser.add_argument("--num-workers", type=int, default=2, help="audio-loading workers of the pretraining")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        template = train_template(args)
        if args.continue_steps < 0:
            raise ValueError(f"--continue-steps {args.continue_steps}: must be a whole number >= 0")
        second = (train_template(args, args.continue_steps, args.continue_lr, args.continue_tasks or None)
                  if args.continue_steps else None)
        runs = pretrain_in_domain(args.manifest, args.pool_labels, args.work, template, args.set, args.folds,
                                  args.pool_only, args.workers, second)
    except (ValueError, AudioError, FileNotFoundError, NotADirectoryError) as err:  # input errors: one line, exit 2
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    folds = [name for name in runs if name != "pool"]
    print(f"{len(folds)} fold pretraining(s) in {args.work}: give the grid --pretrained {args.work}/{{fold}}/run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
