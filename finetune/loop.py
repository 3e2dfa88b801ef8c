"""Training one split: train on ``split.train``, select the epoch on ``split.dev`` by a smoothed dev score, score
``split.test`` once, write the split's folder."""
from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from avpretext.common.batches import check_can_progress, collate, SegmentDataset, train_drop_last
from avpretext.common.io import write_atomic, write_json_atomic
from avpretext.common.schedules import EpochSampler, step_scheduler, warmup_cosine
from finetune.auxiliary import (add_aux_columns, aux_items, aux_loss, aux_weights, CLUSTER, cluster_rounds,
                                hide_unlabelled, labelled_items, loss_mask, training_rows)
from finetune.chunking import chunk_settings
from finetune.config import FinetuneConfig, LRPROBE
from finetune.data import read_seconds, Targets, probe_durations, segment_table
from finetune.losses import check_mixup, compute_loss, mix_batch, mixup_loss
from finetune.metrics import plot_confusion, score
from finetune.fusion import fuse_loaders, fusion_settings
from finetune.layer_statistics import run_lrprobe_cell
from finetune.model import MODEL_DIR, SERModel, resolve_init, save_model
from finetune.probe_cache import probe_loaders
from finetune.selection import dev_loss, SelectionTracker
from finetune.splits import Split, label_subset
from pretext.deep_cluster import round_line


@torch.no_grad()
def predict_loader(accelerator, model, loader) -> tuple[np.ndarray, dict, dict]:
    """Model outputs and references over a loader, gathered across processes in dataset order."""
    model.eval()
    outputs, labels, masks = [], {}, {}
    for batch in loader:
        out = accelerator.gather_for_metrics(model(batch).float())
        outputs.append(out.cpu())
        for t in batch["labels"]:
            labels.setdefault(t, []).append(accelerator.gather_for_metrics(batch["labels"][t]).cpu())
            masks.setdefault(t, []).append(accelerator.gather_for_metrics(batch["masks"][t]).cpu())
    join = lambda parts: {t: torch.cat(v).numpy() for t, v in parts.items()}  # noqa: E731
    return torch.cat(outputs).numpy(), join(labels), join(masks)


def _loaders(config, split_tables: dict, targets: Targets, processes: int = 1, aux_names=()):
    names = targets.names
    train_seconds, eval_seconds = read_seconds(config)  # whole utterances with dynamic chunking
    train_set = SegmentDataset(split_tables["train"], [*names, *aux_names], train_seconds, True, config.seed,
                               config.skip_bad_audio)
    eval_sets = {part: SegmentDataset(split_tables[part], names, eval_seconds, False, config.seed,
                                      config.skip_bad_audio) for part in ("dev", "test")}
    # Not persistent with the cluster loss: its labels change between epochs, and a persistent worker would
    # keep serving the copy of the dataset it was started with.
    common = {"collate_fn": collate, "num_workers": config.num_workers,
              "persistent_workers": config.num_workers > 0 and CLUSTER not in aux_names}
    sampler = EpochSampler(len(train_set), config.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, sampler=sampler,
                                               drop_last=train_drop_last(len(train_set), config.batch_size,
                                                                         processes), **common)
    eval_loaders = {part: torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=False, **common)
                    for part, ds in eval_sets.items()}
    return train_loader, sampler, eval_loaders


def _optimizer(config, model: SERModel, pretrained: bool):
    encoder_lr = config.lr * (config.encoder_lr_mult if pretrained else 1.0)
    head_parts = [model.head, model.aux] + ([model.chunk_pool] if model.chunk_pool is not None else [])
    groups = [{"params": [p for part in head_parts for p in part.parameters()], "lr": config.lr}]
    if config.mode == "finetune":
        groups.append({"params": list(model.encoder.parameters()), "lr": encoder_lr})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _scheduler(optimizer, config, steps_per_epoch: int, freeze_steps: int):
    """Warm-up then cosine decay (per step); the encoder group (if any) is held at 0 while frozen."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = int(config.warmup_epochs * steps_per_epoch)

    def head_factor(step: int) -> float:
        return warmup_cosine(step, warmup, total)

    def encoder_factor(step: int) -> float:
        return 0.0 if step < freeze_steps else head_factor(step)

    factors = [head_factor, encoder_factor][:len(optimizer.param_groups)]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factors)


def _training_loss(model, batch: dict, targets: Targets, class_weight, weights: dict, lam, perm,
                   mix_input: str = "waveform", share=None) -> torch.Tensor:
    """The emotion loss (mixed when ``lam`` is given: mixup of ``mix_input``) plus the weighted auxiliary
    losses (if any).

    ``share``: in a multi-process run, ``(T,) items per masked-mean term -> (T,) factors`` (:func:`_step_shares`)
    that turn this process's means into its shares of the means over the whole step's items.
    """
    inputs, mix = batch, None
    if lam is not None and mix_input == "log_mel":
        mix = (lam, perm)  # mixed inside the model, after its log-mel front end
    elif lam is not None:
        inputs = mix_batch(batch, lam, perm)
    outputs, aux_outputs = model(inputs, aux=True, mix=mix) if weights else (model(inputs, mix=mix), {})
    if lam is None:
        loss = compute_loss(outputs, batch, targets, class_weight)
    else:
        loss = mixup_loss(outputs, batch, lam, perm, targets, class_weight)
    shares = None
    if share is not None and (targets.categorical or weights):
        partners = perm if lam is not None else None
        # The CCC of dimensions is no mean over items: it stays each process's own.
        emotion = [_emotion_items(batch, class_weight, partners)] if targets.categorical else []
        shares = share(torch.stack([*emotion, *(aux_items(batch, weights, partners) if weights else [])]))
        if emotion:
            loss, shares = loss * shares[0], shares[1:]
    return loss + aux_loss(aux_outputs, batch, weights, lam, perm, shares) if weights else loss


def _emotion_items(batch: dict, class_weight, perm) -> torch.Tensor:
    """What the categorical emotion loss's mean divides by in this batch: the labelled items' count, or the sum
    of their class weights (with mixup's ``perm``: the pairs labelled on both sides, weighted by their own
    class; exact without class weights). A float scalar."""
    mask = loss_mask(batch, "emotion", perm)
    if class_weight is None:
        return mask.sum().float()
    return class_weight[batch["labels"]["emotion"][mask]].sum().float()


def _step_shares(accelerator, items: torch.Tensor) -> torch.Tensor:
    """``P * n_p / (n_1 + ... + n_P)`` per loss term. ``items``: (T,) what each masked-mean term of this
    process's batch divides by (labelled items, or their class weights).

    A loss that is a mean over the labelled items of one process's batch does not average to the one-process
    loss of the step when the processes' batches hold different numbers of labelled items (a semi-supervised
    batch, class weights, skipped files): DDP's gradient is the plain mean over processes. Scaled by its factor,
    each process's mean becomes its share of the mean over the labelled items of all processes' batches, and the
    step is the one-process step on their union. A term no process has an item for gets 0 (its loss is 0).
    """
    total = accelerator.reduce(items.detach().clone(), reduction="sum")
    return torch.where(total > 0, accelerator.num_processes * items / total.clamp(min=1e-12),
                       torch.zeros_like(items))


def train_split(config: FinetuneConfig, split: Split, targets: Targets, out: Path, accelerator) -> dict:
    """Train on ``split.train``, select on ``split.dev``, score ``split.test``; write ``out``; return metrics.

    The accelerator is shared by every split of a run and every cell of an experiment, and ``prepare`` keeps a
    reference to each model, optimizer and loader it wraps: without ``free_memory`` each split would leave its
    model and its loaders' persistent worker processes alive until the run ends (6 processes per cell).
    """
    if config.mode == LRPROBE:  # nothing trained by gradient: a frozen encoder's statistics + logistic regression
        return run_lrprobe_cell(config, split, targets, out, accelerator.device, write=accelerator.is_main_process)
    try:
        return _train_split(config, split, targets, out, accelerator)
    finally:
        accelerator.free_memory()  # drops prepare()'s references; gc then shuts the loaders' workers down


def _train_split(config: FinetuneConfig, split: Split, targets: Targets, out: Path, accelerator) -> dict:
    from accelerate.utils import set_seed

    set_seed(config.seed)
    labelled = split.train
    if config.label_fraction < 1:
        label_column = "label" if targets.categorical else "speaker"
        labelled = label_subset(labelled, config.label_fraction, config.seed, label_column)
    tables, skipped, weights, aux_classes = {}, [], aux_weights(config), {}
    # With auxiliary tasks every training row (emotion hidden where unlabelled): finetune.auxiliary.
    train_rows = training_rows(split.train, labelled, weights)
    for part, rows in (("train", train_rows), ("dev", split.dev), ("test", split.test)):
        probed, bad = probe_durations(rows, config.skip_bad_audio)
        tables[part], skipped = segment_table(probed, targets), skipped + bad
        if part == "train" and weights:  # speaker ids of this split's training speakers only
            tables[part], aux_classes = add_aux_columns(tables[part], probed, weights, config.cluster_k)
            tables[part] = hide_unlabelled(tables[part], probed, targets.names)
    encoder, pretrained, source = resolve_init(config)
    check_mixup(config, encoder)  # run() and the grid check it before any work; a library call here
    model = SERModel(encoder, targets.num_outputs, config.head, config.head_hidden, config.dropout, aux_classes,
                     ("speaker",) if config.speaker_adversarial else (), chunk_settings(config),
                     fusion_settings(config))
    class_weight = None
    if config.class_weights and targets.categorical:
        train_table = tables["train"][tables["train"]["emotion_mask"]]  # labelled rows only
        counts = np.bincount(train_table["emotion_label"], minlength=targets.num_outputs).astype(np.float64)
        class_weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / targets.num_outputs, dtype=torch.float32,
                                    device=accelerator.device)

    if config.mode == "probe":
        model.encoder.requires_grad_(False)  # also keeps DDP from waiting for gradients that never come
        train_loader, sampler, eval_loaders = probe_loaders(config, accelerator, model, tables, targets)
    else:
        train_loader, sampler, eval_loaders = _loaders(config, tables, targets, accelerator.num_processes,
                                                       list(weights))
    # DeepEmoCluster's pseudo-classes (finetune.auxiliary) label the training set's rows in place; round 0 is
    # made from the starting model before epoch 1.
    clusters = (cluster_rounds(config, train_loader.dataset, out, read_seconds(config)[1]) if CLUSTER in weights
                else None)
    if config.fuse:  # batches also carry the files' functionals (finetune.fusion)
        train_loader, eval_loaders = fuse_loaders(config, model, tables, train_loader, eval_loaders)
    freeze_epochs = config.freeze_epochs if (pretrained and config.mode == "finetune") else 0
    # What each process's sharded loader yields (an epoch with none would train nothing, silently).
    steps_per_epoch = check_can_progress(len(train_loader.dataset), config.batch_size, accelerator.num_processes,
                                         train_loader.drop_last, f"{split.name}: the training set",
                                         "check the manifest and --label-fraction (or the skipped files)")
    optimizer = _optimizer(config, model, pretrained)
    scheduler = _scheduler(optimizer, config, steps_per_epoch, freeze_epochs * steps_per_epoch)
    # The scheduler counts this process's steps (steps_per_epoch is per process) and is stepped once per step
    # (step_scheduler), never prepared: Accelerate's wrapper would step it once per process.
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    cluster_facts = []
    if clusters is not None:
        if accelerator.is_main_process:
            clusters.clear()  # rounds an earlier run of this split left (the others only read the new ones)
        cluster_facts.append(clusters.run_round(accelerator, model, optimizer, 0, 0))
        if config.progress:
            accelerator.print(f"{split.name} {round_line(cluster_facts[-1])}")
    eval_loaders = {part: accelerator.prepare(loader) for part, loader in eval_loaders.items()}

    share = functools.partial(_step_shares, accelerator) if accelerator.num_processes > 1 else None
    history, best = [], {"smoothed": -math.inf, "epoch": -1, "state": None}
    tracker = SelectionTracker(config)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)
        model.train()
        if epoch < freeze_epochs or config.mode == "probe":
            accelerator.unwrap_model(model).encoder.eval()  # frozen: BatchNorm statistics stay as pretrained
        loss_sum, batches = 0.0, 0
        # Mixing weights and partners: seeded per (seed, epoch, process), so a rerun mixes the same pairs.
        mix_rng = np.random.default_rng([config.seed, epoch, accelerator.process_index])
        for batch in train_loader:
            lam = perm = None
            if config.mixup_alpha > 0:
                lam = float(mix_rng.beta(config.mixup_alpha, config.mixup_alpha))
                size = len(batch["lengths"] if "lengths" in batch else batch["embeddings"])
                perm = torch.from_numpy(mix_rng.permutation(size)).to(accelerator.device)
            loss = _training_loss(model, batch, targets, class_weight, weights, lam, perm, config.mixup_input,
                                  share)
            accelerator.backward(loss)
            optimizer.step()
            step_scheduler(accelerator, scheduler)
            optimizer.zero_grad()
            loss_sum, batches = loss_sum + float(loss.detach()), batches + 1
        if not batches:  # check_can_progress said otherwise: never report an untrained model as trained
            raise RuntimeError(f"{split.name} epoch {epoch + 1}: the training loader yielded no batch")
        # Every process's losses: the epoch's mean is the one-process run's, not the main process's shard's.
        loss_sum, batches = accelerator.reduce(torch.tensor([loss_sum, batches], dtype=torch.float64,
                                                            device=accelerator.device), reduction="sum").tolist()
        dev_outputs = predict_loader(accelerator, model, eval_loaders["dev"])
        dev, loss_dev = score(*dev_outputs, targets), dev_loss(*dev_outputs, targets, class_weight)
        smoothed, improved = tracker.update(dev["uar"], loss_dev, accelerator.unwrap_model(model))
        record = {"epoch": epoch + 1, "train_loss": loss_sum / max(batches, 1), "dev_uar": dev["uar"],
                  "dev_loss": loss_dev, "dev_smoothed": smoothed, "lr": scheduler.get_last_lr()[0],
                  "elapsed_s": round(time.perf_counter() - started, 2)}
        history.append(record)
        if improved:
            best = {"smoothed": record["dev_smoothed"], "epoch": epoch + 1, "dev": dev,
                    "state": tracker.states[epoch + 1]}
        if config.progress:
            accelerator.print(f"{split.name} epoch {epoch + 1}: loss {record['train_loss']:.3f} dev "
                              f"{'UAR' if targets.categorical else 'CCC'} {dev['uar']:.3f} "
                              f"(smoothed {record['dev_smoothed']:.3f})")
        if tracker.should_stop():
            break
        if clusters is not None and epoch + 1 < config.epochs and clusters.due(epoch + 1):
            cluster_facts.append(clusters.after_epoch(accelerator, model, optimizer, epoch + 1))
            if config.progress:
                accelerator.print(f"{split.name} {round_line(cluster_facts[-1])}")
    unwrapped = accelerator.unwrap_model(model)

    def test_score(state: dict) -> dict:
        unwrapped.load_state_dict(state)
        return score(*predict_loader(accelerator, model, eval_loaders["test"]), targets)

    selections = tracker.test_scores(test_score)  # other rules' epochs (compare_selections), else none
    unwrapped.load_state_dict(best["state"])
    test = score(*predict_loader(accelerator, model, eval_loaders["test"]), targets)
    result = {"split": split.name, "test": test, "best_epoch": best["epoch"], "epochs_run": len(history),
              "dev": best["dev"], "dev_smoothed": best["smoothed"], "init": source, "pretrained": pretrained,
              "mode": config.mode, "label_fraction": config.label_fraction, "seed": config.seed,
              "train_items": len(tables["train"]),
              "train_labelled_items": labelled_items(tables["train"], targets.names), "dev_items": len(tables["dev"]),
              "test_items": len(tables["test"]), "test_speakers": split.test_speakers,
              "dev_speakers": sorted(split.dev["speaker"].unique()), "skipped_bad_audio": skipped,
              "train_seconds": round(time.perf_counter() - started, 2),
              "shortest_train_utterance_s": round(float((tables["train"]["end"] - tables["train"]["start"]).min()), 3)}
    if selections:
        result["selections"] = selections
    if cluster_facts:  # the rounds' sizes; their assignments are in OUT/<split>/clusters
        result["cluster_rounds"] = [{key: facts[key] for key in ("round", "epoch", "cluster_sizes", "inertia")}
                                    for facts in cluster_facts]
    if accelerator.is_main_process:
        _write_split(out, result, history, unwrapped, targets, config.save_model)
    accelerator.wait_for_everyone()
    return result


def _write_split(out: Path, result: dict, history: list, model: SERModel, targets: Targets, keep_model: bool):
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "history.jsonl", lambda tmp: tmp.write_text("".join(json.dumps(h) + "\n" for h in history)))
    if targets.categorical:
        plot_confusion(result["test"]["confusion"], targets.class_names, out / "confusion.png",
                       f"{result['split']}: UAR {result['test']['uar']:.3f}")
    if keep_model:
        save_model(model, targets, out / MODEL_DIR, result["shortest_train_utterance_s"])
    write_json_atomic(out / "metrics.json", result)
