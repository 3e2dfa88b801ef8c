"""Multi-task pretext pretraining of a speech encoder with Accelerate.

    accelerate launch pretext/train.py --data DIR --tasks energy,face,au --encoder cnn --out RUN [...]
    python pretext/train.py ...                       # the same, one process

The same script runs as one process, as several processes on one machine, or across machines: devices,
process groups and mixed precision come from Accelerate. The loop sums ``weight[t] * task.loss(...)`` over
the tasks and never names a specific one. Its options are :class:`pretext.config.TrainConfig`; checkpoints
(saved, rotated, resumed) are :mod:`pretext.checkpoint`'s, the metrics records :mod:`pretext.metrics_log`'s.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import send_to_device, set_seed
from torch import nn

from avpretext.common.audio import AudioError, audio_error
from avpretext.common.batches import check_can_progress, collate, SegmentDataset, split_by_media, train_drop_last
from avpretext.common.cli import command_name, parse_config
from avpretext.common.distributed import die_with_launcher, finish_processes
from avpretext.common.environment import record_environment
from avpretext.common.io import check_output_folder, write_json_atomic
from avpretext.common.progress import StepProgress
from avpretext.common.run_lock import hold_run_lock
from avpretext.common.schedules import EpochSampler, build_scheduler, epoch_seed, step_scheduler
from data_prep.segments import LABEL_CONFIG_FILE, SEGMENTS_FILE, STATS_FILE, load_segments, segments_path
from encoders import build_encoder, load_pretrained_into, save_pretrained
from pretext.checkpoint import CHECKPOINT_DIR, Checkpointed, TrainState, load_newest, save_rotating
from pretext.config import MUST_MATCH_ON_RESUME, RUN_CONFIG_FILE, TrainConfig, check_options
from pretext.deep_cluster import check_recluster, DeepClusterLoop, round_line
from pretext.metrics_log import RunningSums, drop_records_after, validation_line, write_record
from pretext.tasks import TASKS, PretextTask, parse_tasks

PROG = command_name("pretext/train.py", "avpretext-pretrain")  # in usage and error lines


class PretextModel(nn.Module):
    """Encoder + one head per task: (wavs (B, T), lengths (B,)) -> {task: logits (B, C_task)}."""

    def __init__(self, encoder, heads: dict[str, nn.Module]):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        encoded = self.encoder(wavs, lengths)
        # Frame-level heads (pretext.tasks.base.FrameRegressionTask) read the frames, the others the pooled one.
        return {name: head(encoded if getattr(head, "reads_frames", False) else encoded.pooled)
                for name, head in self.heads.items()}


def load_task_table(data: str, tasks) -> tuple:
    """The segment table and each task's label config (from the label run), checked for usable labels."""
    path = Path(data)
    table_path = segments_path(path)
    if not path.exists():
        raise ValueError(f"--data {data}: not found")
    if not table_path.is_file():
        raise ValueError(f"--data {data}: no {SEGMENTS_FILE}; label it first (data_prep label {data})")
    try:
        table = load_segments(data)
    except Exception as err:  # pyarrow raises several types for a file that is not a parquet table
        raise ValueError(f"{table_path}: not a readable segment table ({type(err).__name__}: {err})") from None
    folder = path if path.is_dir() else path.parent
    if table.empty:  # before the column checks: an empty table lacks the task columns too
        raise ValueError(f"{table_path}: the table has 0 segments; see {folder / STATS_FILE} for why "
                         "(e.g. no speech region long enough: segmentation.mode = auto or clip for pre-cut clips)")
    config_file = folder / LABEL_CONFIG_FILE
    label_config = json.loads(config_file.read_text()) if config_file.exists() else {}
    configs = {}
    for task in tasks:
        for column in (task.label_column, task.mask_column):
            if column not in table:
                raise ValueError(f"task {task.name!r}: the segment table has no {column!r} column; "
                                 f"relabel with this task (data_prep label) first")
        if not table[task.mask_column].any():
            raise ValueError(f"task {task.name!r}: every segment's label is missing (mask all False) in {data}")
        # The labels were made with the label run's config (e.g. the AU class list): use the same.
        configs[task.name] = task.Config(**label_config.get(task.name, {}))
    return table, configs


def task_weights(given: dict, names: list[str]) -> dict[str, float]:
    """``--task-weights`` -> a loss weight per trained task (default 1); unknown tasks and non-numbers refused."""
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"--task-weights: {unknown} are not trained tasks (--tasks gives {names})")
    weights = {}
    for name in names:
        value = given.get(name, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"--task-weights: {name!r} must be a number >= 0, not {value!r}")
        weights[name] = float(value)
    return weights


def train(config: TrainConfig) -> Path:
    """Run (or resume) a pretraining run; returns the exported encoder's folder ``OUT/encoder``.

    The options, the data and every audio file are checked before anything is written to ``OUT``; the run then
    holds ``OUT/run.lock`` (:mod:`avpretext.common.run_lock`) until it ends, so a second live run into the same
    folder is refused while a killed one's folder resumes as it is.
    """
    die_with_launcher()
    check_options(config)
    out = check_output_folder(config.out)
    trackers = resolve_trackers(config.report_to)
    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum, mixed_precision=config.mixed_precision,
                              log_with=trackers or None, project_dir=str(out))
    run = _check_run(config, accelerator)
    with hold_run_lock(out, accelerator) as lock:
        _check_or_save_config(config, out, accelerator)
        return _train(config, accelerator, out, trackers, run, lock)


@dataclass
class CheckedRun:
    """What :func:`_check_run` built and checked before anything is written."""

    tasks: list
    task_configs: dict
    weights: dict
    train_table: object
    val_table: object
    drop_last: bool
    encoder: nn.Module
    heads: dict


def check_audio_files(table, workers: int = 8) -> None:
    """AudioError naming the first audio file of the segment table that cannot be opened (missing, not audio,
    unsupported): found before the run writes anything, not when a loader first reads it. Reads each file's
    header once (in threads: on network storage the time is latency)."""
    def probe(path):
        try:
            sf.info(str(path))
        except Exception as err:  # soundfile raises several types for missing/corrupt files
            return audio_error(path, err)
        return None

    with ThreadPoolExecutor(workers) as pool:
        for error in pool.map(probe, table["audio_path"].unique()):
            if error is not None:
                raise error


def _check_run(config: TrainConfig, accelerator) -> CheckedRun:
    """Everything a user can get wrong, checked before the first write: a config.json left by a refused run
    would make both the corrected command ("already holds a run") and --resume ("differs") fail."""
    set_seed(config.seed)
    tasks = parse_tasks(config.tasks)
    check_recluster(config.recluster_every, [t.name for t in tasks])
    table, task_configs = load_task_table(config.data, tasks)
    weights = task_weights(config.task_weights, [t.name for t in tasks])
    train_table, val_table = split_by_media(table, config.val_fraction, config.seed)
    drop_last = train_drop_last(len(train_table), config.batch_size, accelerator.num_processes)
    check_can_progress(len(train_table), config.batch_size, accelerator.num_processes, drop_last,
                       f"the training split of {config.data}", "lower --val-fraction or label more media")
    if not drop_last and len(train_table) < config.batch_size * accelerator.num_processes:
        # Too few to drop the incomplete batch: train on it (Accelerate completes it by cycling under several
        # processes) rather than refuse a small run, but say why each step sees the same few segments.
        accelerator.print(f"warning: the training split has only {len(train_table)} segments for --batch-size "
                          f"{config.batch_size} x {accelerator.num_processes} process(es): every step trains on "
                          "all of them")
    try:
        encoder = build_encoder(config.encoder, **config.encoder_options)
    except TypeError as err:  # a wrongly typed option reaches the encoder's constructor
        raise ValueError(f"--encoder-options {json.dumps(config.encoder_options)}: {err}") from None
    if config.init_encoder:
        # Before the heads and before prepare(): every process loads the same file, so the ranks start equal.
        load_pretrained_into(encoder, config.init_encoder)
    heads = {t.name: t.build_head(encoder.frame_dim if t.frame_level else encoder.output_dim, task_configs[t.name],
                                  config.head_hidden) for t in tasks}
    if not config.skip_bad_audio:
        check_audio_files(table)
    if config.warmup_steps >= config.max_steps:
        accelerator.print(f"warning: --warmup-steps {config.warmup_steps} >= --max-steps {config.max_steps}: the "
                          f"learning rate never reaches --lr {config.lr:g}")
    return CheckedRun(tasks, task_configs, weights, train_table, val_table, drop_last, encoder, heads)


@dataclass
class StepContext:
    """What the bookkeeping after an optimizer step (logging, validation, checkpoints) reads: fixed for a run."""

    config: TrainConfig
    accelerator: Accelerator
    out: Path
    tasks: list[PretextTask]
    num_classes: dict[str, int]
    model: nn.Module  # prepared
    scheduler: torch.optim.lr_scheduler.LRScheduler
    val_loader: torch.utils.data.DataLoader  # this process's validation shard, not prepared
    validate: bool  # the run has validation segments (the same on every process: validation is sharded)
    checkpointed: Checkpointed
    progress: StepProgress
    started: float  # time.perf_counter() when training started

    def empty_sums(self) -> RunningSums:
        return RunningSums.empty(self.tasks, self.num_classes, self.accelerator.device)


def _train(config: TrainConfig, accelerator, out: Path, trackers: list[str], run: CheckedRun, lock) -> Path:
    """Train a checked run whose folder this process holds (``lock`` on the main process, else None)."""
    tasks, task_configs, weights, encoder, heads = run.tasks, run.task_configs, run.weights, run.encoder, run.heads
    train_table, val_table, drop_last = run.train_table, run.val_table, run.drop_last
    names = [t.name for t in tasks]
    frame_targets = {t.name: functools.partial(t.frame_targets, cfg=task_configs[t.name]) for t in tasks
                     if t.frame_level}
    train_set = SegmentDataset(train_table, names, config.max_seconds, True, config.seed, config.skip_bad_audio,
                               frame_targets)
    val_set = SegmentDataset(val_table, names, config.max_seconds, False, config.seed, config.skip_bad_audio,
                             frame_targets)
    sampler = EpochSampler(len(train_set), config.seed)
    # Each loader has its own generator, re-seeded before every pass (per epoch, per evaluation): creating an
    # iterator draws the workers' base seed from it, not from the global RNG (which dropout uses), so a
    # resumed run draws exactly what an uninterrupted one does. Workers are not persistent for the same
    # reason: they are started, and seeded, for each pass.
    train_generator, val_generator = torch.Generator(), torch.Generator()
    loader_args = {"batch_size": config.batch_size, "collate_fn": collate, "num_workers": config.num_workers}
    train_loader = torch.utils.data.DataLoader(train_set, sampler=sampler, drop_last=drop_last,
                                               generator=train_generator, **loader_args)
    # Validation is sharded here (every num_processes-th segment), not by Accelerate: its shards are padded to
    # equal batches with repeated segments, which would be scored twice.
    val_shard = torch.utils.data.Subset(val_set, range(accelerator.process_index, len(val_set),
                                                       accelerator.num_processes))
    val_loader = torch.utils.data.DataLoader(val_shard, shuffle=False, generator=val_generator, **loader_args)

    model = PretextModel(encoder, heads)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # Built for max_steps optimizer steps and stepped once per step (step_scheduler), never prepared:
    # Accelerate's wrapper would step it once per process.
    scheduler = build_scheduler(optimizer, config.warmup_steps, config.max_steps)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    checkpointed = Checkpointed(model, optimizer, scheduler, {"train_loader": train_generator})
    state = _resume(accelerator, out, checkpointed) if config.resume else TrainState()
    reclusters = (DeepClusterLoop(config.recluster_every, task_configs["cluster"], [train_set, val_set], out,
                                  config.seed, config.batch_size) if config.recluster_every else None)
    if reclusters is not None and config.resume:
        reclusters.resume(state.epoch)  # the labels of the newest round the checkpoint had seen
    if trackers:
        accelerator.init_trackers("pretext", config={k: str(v) for k, v in dataclasses.asdict(config).items()})

    if not len(val_set):
        accelerator.print("no validation segments (--val-fraction 0, or fewer than 2 media items: validation "
                          "takes whole media items): validation is skipped")
    ctx = StepContext(config, accelerator, out, tasks, {t.name: t.num_classes(task_configs[t.name]) for t in tasks},
                      model, scheduler, val_loader, len(val_set) > 0, checkpointed,
                      StepProgress(config.max_steps, state.step, enabled=accelerator.is_main_process),
                      time.perf_counter())
    running = ctx.empty_sums()
    model.train()
    while state.step < config.max_steps:
        # Through the prepared loader: Accelerate re-sets the sampler's epoch from its own pass count, which
        # restarts at 0 in a resumed run.
        train_loader.set_epoch(state.epoch)
        sampler.start = state.batch_in_epoch * config.batch_size * accelerator.num_processes
        train_generator.manual_seed(epoch_seed(config.seed, state.epoch))
        whole_epoch, steps_before = state.batch_in_epoch == 0, state.step
        waited = time.perf_counter()
        for batch in train_loader:
            running.data_wait_s += time.perf_counter() - waited
            logits, losses = train_step(accelerator, model, optimizer, scheduler, batch, tasks, weights)
            state.batch_in_epoch += 1
            running.add(tasks, losses, logits, batch, ctx.num_classes)
            if accelerator.sync_gradients:  # an optimizer step happened (not mid-accumulation)
                state.step += 1
                ctx.progress.update()
                running = _after_step(ctx, state, running)
                if lock is not None:
                    lock.check()
                if state.step >= config.max_steps:
                    break
            waited = time.perf_counter()
        else:
            if whole_epoch and state.step == steps_before:  # the next epoch would be the same: never spin
                raise RuntimeError(f"epoch {state.epoch} made no optimizer step ({len(train_set)} training "
                                   f"segments, batch {config.batch_size} x {accelerator.num_processes} processes)")
            state.epoch += 1
            state.batch_in_epoch = 0
            if reclusters is not None and reclusters.due(state.epoch):
                ctx.progress.write(round_line(reclusters.after_epoch(accelerator, model, optimizer, state.epoch)))
    ctx.progress.close()
    _check_ranks_in_sync(accelerator, model)
    export = out / "encoder"
    if accelerator.is_main_process:
        save_pretrained(accelerator.unwrap_model(model).encoder, export)
    # Every process waits for the export; the process group is destroyed by the caller once this function's
    # DDP model is gone (avpretext.common.distributed.finish_processes).
    accelerator.wait_for_everyone()
    for tracker in accelerator.trackers:
        tracker.finish()
    return export


def _after_step(ctx: StepContext, state: TrainState, running: RunningSums) -> RunningSums:
    """Logging, evaluation and checkpoints due at this step. Returns the (possibly restarted) running sums."""
    config = ctx.config
    last = state.step == config.max_steps
    if state.step % config.log_every == 0 or last:
        record = _log(ctx, state, running, "train", ctx.scheduler.get_last_lr()[0])
        ctx.progress.show({**{k[:-len("/loss")]: v for k, v in record.items()
                              if k.endswith("/loss") and v is not None}, "lr": record["lr"]})
        running = ctx.empty_sums()
    if ctx.validate and (state.step % config.eval_every == 0 or last):
        ctx.val_loader.generator.manual_seed(config.seed)  # the same worker seeds at every evaluation
        ctx.progress.write(validation_line(_evaluate(ctx, state)))
        ctx.model.train()
    if state.step % config.checkpoint_every == 0 or last:
        save_rotating(ctx.out, ctx.accelerator, ctx.checkpointed, state, config.keep_checkpoints)
    return running


def train_step(accelerator, model, optimizer, scheduler, batch, tasks, weights):
    """One (possibly accumulated) optimization step on ``batch``. Returns (logits, losses) per task."""
    with accelerator.accumulate(model):
        logits = model(batch["wavs"], batch["lengths"])
        losses = {t.name: t.loss(logits[t.name], batch["labels"][t.name], batch["masks"][t.name]) for t in tasks}
        loss = sum(weights[name] * value for name, value in losses.items())
        accelerator.backward(loss)
        optimizer.step()
        step_scheduler(accelerator, scheduler)
        optimizer.zero_grad()
    return logits, losses


def _check_ranks_in_sync(accelerator, model) -> None:
    """Every process must end with the same weights (DDP all-reduces gradients); say so, or fail loudly."""
    flat = torch.cat([p.detach().float().reshape(-1) for p in accelerator.unwrap_model(model).parameters()])
    fingerprint = torch.stack([flat.sum(), flat.abs().sum(), (flat * torch.arange(len(flat), device=flat.device)
                                                                   .remainder(7919).float()).sum()]).double()
    gathered = accelerator.gather(fingerprint.unsqueeze(0))
    if not torch.allclose(gathered, gathered[:1].expand_as(gathered), rtol=0, atol=0):
        raise RuntimeError(f"processes ended with different weights: {gathered.tolist()}")
    if accelerator.num_processes > 1:
        accelerator.print(f"weights identical on all {accelerator.num_processes} processes")


def _log(ctx: StepContext, state: TrainState, running: RunningSums, split: str, lr: float | None) -> dict:
    """One metrics record of ``running`` (:func:`pretext.metrics_log.write_record`); returns it."""
    record = {"step": state.step, "epoch": state.epoch, "split": split,
              "elapsed_s": round(time.perf_counter() - ctx.started, 2)}
    if lr is not None:
        record["lr"] = lr
    return write_record(ctx.accelerator, ctx.out, ctx.tasks, record, running)


@torch.no_grad()
def _evaluate(ctx: StepContext, state: TrainState) -> dict:
    """Score this process's validation shard (``ctx.val_loader``, not prepared: its batches are moved here)
    with the model itself, outside DDP (shards may differ by a batch); the logged record sums every
    process's."""
    accelerator, tasks = ctx.accelerator, ctx.tasks
    model = accelerator.unwrap_model(ctx.model)  # keeps the mixed-precision autocast of prepare()
    model.eval()
    running = ctx.empty_sums()
    for batch in ctx.val_loader:
        batch = send_to_device(batch, accelerator.device)
        logits = model(batch["wavs"], batch["lengths"])
        losses = {t.name: t.loss(logits[t.name], batch["labels"][t.name], batch["masks"][t.name]) for t in tasks}
        running.add(tasks, losses, logits, batch, ctx.num_classes)
    return _log(ctx, state, running, "val", None)


def _resume(accelerator, out: Path, checkpointed: Checkpointed) -> TrainState:
    """Restore the newest checkpoint (nothing is unpickled) and drop the metrics logged after it, so
    ``metrics.jsonl`` holds each step once. Returns the restored counters (step 0 without a checkpoint)."""
    resumed = load_newest(out, accelerator, checkpointed)
    if resumed is None:
        accelerator.print(f"--resume: no checkpoint in {out / CHECKPOINT_DIR}; starting from step 0")
        state = TrainState()
    else:
        folder, state = resumed
        accelerator.print(f"resumed from {folder} at step {state.step}")
    drop_records_after(accelerator, out, state.step)
    return state


def _check_or_save_config(config: TrainConfig, out: Path, accelerator) -> None:
    path = out / RUN_CONFIG_FILE
    current = dataclasses.asdict(config)
    if path.exists():
        saved = json.loads(path.read_text())
        if not config.resume:
            raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        diff = {k: (saved.get(k), current[k]) for k in MUST_MATCH_ON_RESUME if saved.get(k) != current[k]}
        if diff:
            raise ValueError(f"cannot resume {out}: the saved run differs on {diff}")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, current)
        record_environment(out)  # one line per start: a run resumed on another machine shows both
    accelerator.wait_for_everyone()


def resolve_trackers(report_to: str) -> list[str]:
    """``--report-to`` -> Accelerate tracker names. ``auto`` uses TensorBoard when it is installed."""
    if report_to == "none":
        return []
    if report_to == "auto":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            return []
        return ["tensorboard"]
    return [name.strip() for name in report_to.split(",") if name.strip()]


def parse_args(argv=None) -> TrainConfig:
    return parse_config(TrainConfig, argv, "Multi-task pretext pretraining of a speech encoder.", required=("data",),
                        prog=PROG, notes={"tasks": f"(built-in: {', '.join(TASKS)})"})


def main(argv=None) -> int:
    try:
        export = train(parse_args(argv))
        finish_processes()
    except (ValueError, AudioError, NotADirectoryError) as err:  # user/input errors: one line, exit 2
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    if PartialState().is_main_process:
        print(f"encoder exported to {export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
