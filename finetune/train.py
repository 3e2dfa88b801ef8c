"""Fine-tune and evaluate a speech encoder for emotion recognition, speaker-independently.

    python finetune/train.py --manifest M.csv --init RUN|DIR|scratch --out OUT [--mode finetune|probe] ...
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
embeddings, computed once (SUPERB-style linear probe).
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


from avpretext.common.audio import audio_error, AudioError
from avpretext.common.batches import check_can_progress, collate, SegmentDataset, stack_by_task, train_drop_last
from avpretext.common.cli import parse_config
from avpretext.common.io import check_output_folder, write_json_atomic
from avpretext.common.metrics import concordance
from avpretext.common.schedules import EpochSampler, warmup_cosine
from encoders import build_encoder, load_pretrained, read_encoder_config, save_pretrained
from encoders.io import LoadError, load_module_state, read_json, save_tensors
from finetune.data import Targets, probe_durations, resolve_targets, segment_table
from finetune.metrics import ccc, classification_metrics, metrics_from_confusion, plot_confusion
from finetune.recipes import load_manifest
from finetune.splits import Split, label_subset, make_splits

MODES = ("finetune", "probe")
HEADS = ("linear", "mlp")
MODEL_DIR = "model"
HEAD_FILE = "head.safetensors"
LABELS_FILE = "labels.json"


@dataclass
class FinetuneConfig:
    manifest: str = ""  # a manifest CSV (finetune.prepare)
    out: str = "runs/finetune"  # run folder: metrics.json, history, confusion plots, model/
    init: str = "scratch"  # scratch | a pretext run folder (uses RUN/encoder) | an exported encoder folder
    encoder: str = "cnn"  # architecture for scratch; must match a pretrained encoder's when given explicitly
    encoder_options: dict = dataclasses.field(default_factory=dict)  # scratch architecture overrides
    mode: str = "finetune"  # finetune | probe
    head: str = "linear"  # linear | mlp
    head_hidden: int = 256  # hidden width of the mlp head
    dropout: float = 0.2  # dropout before the head
    classes: str = ""  # comma-separated class order (default: the manifest's labels, sorted)
    dimensions: str = ""  # e.g. arousal,valence: regression with a CCC loss instead of classes
    protocol: str = "auto"  # auto | split | folds (see finetune.splits)
    num_folds: int = 6  # speaker-independent folds when the protocol is folds
    fold: str = "all"  # all, or split names/indices (e.g. 0 or fold0,fold3)
    dev_speakers: int = 2  # training speakers held out per fold for model selection
    split_seed: int = 0  # seeds the assignment of speakers to folds
    label_fraction: float = 1.0  # stratified, nested subset of the training rows
    seed: int = 0  # seeds the head, crops and sampling (one seed per grid cell)
    epochs: int = 30  # at most this many epochs (early stopping may end sooner)
    batch_size: int = 16  # per process
    lr: float = 1e-3  # head (and scratch encoder) learning rate
    # Pretrained encoder's learning rate = lr * this. 1.0, not the 0.1 common for large SSL encoders: on RAVDESS
    # the toolkit's small encoders fine-tuned at 0.1x underfit in 12 epochs, 10 UAR points below 1.0x
    # (docs/results.md, the gentle and slow_encoder ablations).
    encoder_lr_mult: float = 1.0
    freeze_epochs: int = 0  # pretrained encoder frozen for the first epochs (then fine-tuned)
    weight_decay: float = 0.01  # AdamW weight decay
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to 0 at the last epoch
    smooth: int = 3  # dev UAR averaged over the last `smooth` evaluations for model selection
    patience: int = 8  # stop when the smoothed dev score has not improved for this many epochs
    class_weights: bool = False  # weight the loss by inverse class frequency
    max_seconds: float = 4.0  # training crops
    eval_max_seconds: float = 10.0  # evaluation reads up to this much of each utterance (centred)
    num_workers: int = 2  # audio-loading worker processes per training process
    mixed_precision: str = "no"  # no | bf16 | fp16 (passed to Accelerate)
    skip_bad_audio: bool = False  # drop unreadable files (named and counted in metrics.json) instead of stopping
    save_model: bool = True  # write the selected model to OUT/model (for predict)
    progress: bool = True  # print one line per epoch


# ----------------------------------------------------------------------------------------------------------
# Model.

class Standardize(nn.Module):
    """(x - mean) / std with stored statistics (identity until :meth:`fit`). A frozen encoder's embeddings
    can have any scale; a linear probe trains much better on standardised ones."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, embeddings: torch.Tensor) -> None:
        self.mean.copy_(embeddings.mean(0))
        self.std.copy_(embeddings.std(0).clamp(min=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SERModel(nn.Module):
    """Encoder + head. ``forward(batch)`` -> (B, num_outputs) logits (or dimension values).

    A batch holds either audio (``wavs`` (B, T), ``lengths`` (B,)) or, in probe mode, precomputed pooled
    ``embeddings`` (B, D) that go straight to the head.
    """

    def __init__(self, encoder, num_outputs: int, head: str = "linear", hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose from {HEADS}")
        self.encoder = encoder
        dim = encoder.output_dim
        self.head_config = {"head": head, "hidden": hidden, "dropout": dropout, "num_outputs": num_outputs}
        if head == "linear":
            self.head = nn.Sequential(Standardize(dim), nn.Dropout(dropout), nn.Linear(dim, num_outputs))
        else:
            self.head = nn.Sequential(Standardize(dim), nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, num_outputs))

    def forward(self, batch: dict) -> torch.Tensor:
        if "embeddings" in batch:
            return self.head(batch["embeddings"])
        return self.head(self.encoder(batch["wavs"], batch["lengths"]).pooled)


def resolve_init(config: FinetuneConfig):
    """The starting encoder: (encoder, pretrained: bool, source description)."""
    if config.init == "scratch":
        return build_encoder(config.encoder, **config.encoder_options), False, "scratch"
    folder = encoder_folder(config.init)
    if not (folder / "config.json").exists():
        raise ValueError(f"--init {config.init}: neither an exported encoder (config.json + model.safetensors) "
                         "nor a pretext run folder holding one in encoder/")
    encoder = load_pretrained(folder)
    if config.encoder != encoder.name and config.encoder != FinetuneConfig.encoder:
        raise ValueError(f"--encoder {config.encoder} but {folder} holds a {encoder.name} encoder")
    return encoder, True, str(folder)


def encoder_folder(path: str | Path) -> Path:
    """An exported encoder folder, or the ``encoder/`` folder of a pretext run."""
    path = Path(path)
    return path / "encoder" if (path / "encoder" / "config.json").exists() else path


def scratch_twin(path: str | Path) -> tuple[str, dict]:
    """(name, options) that rebuild a saved encoder's architecture with fresh weights: the fair baseline."""
    return read_encoder_config(encoder_folder(path))


def save_model(model: SERModel, targets: Targets, directory: Path) -> Path:
    """Encoder (``save_pretrained``) + head weights (safetensors) + labels/head config (JSON)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_pretrained(model.encoder, directory / "encoder")
    save_tensors(model.head.state_dict(), directory / HEAD_FILE)
    write_json_atomic(directory / LABELS_FILE, {"class_names": targets.class_names,
                                                "dimensions": targets.dimensions, **model.head_config})
    return directory


def load_model(directory: str | Path) -> tuple[SERModel, Targets]:
    """Rebuild a model written by :func:`save_model` (nothing is unpickled)."""
    directory = Path(directory)
    info = read_json(directory / LABELS_FILE)
    encoder = load_pretrained(directory / "encoder")
    try:
        head = {key: info[key] for key in ("num_outputs", "head", "hidden", "dropout")}
        targets = Targets(list(info["class_names"]), list(info["dimensions"]))
        model = SERModel(encoder, **head)
    except (KeyError, TypeError, ValueError) as err:
        raise LoadError(directory / LABELS_FILE, f"not a usable model description ({type(err).__name__}: "
                                                 f"{err})") from None
    load_module_state(model.head, directory / HEAD_FILE)
    return model.eval(), targets


# ----------------------------------------------------------------------------------------------------------
# Losses and scores.

def ccc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - CCC over the labelled items of one dimension. pred, target: (B,), mask: (B,) bool."""
    p, t = pred[mask], target[mask]
    if len(p) < 2:
        return pred.sum() * 0
    return 1 - concordance(p, t, eps=1e-8)


def compute_loss(outputs: torch.Tensor, batch: dict, targets: Targets, class_weight) -> torch.Tensor:
    if targets.categorical:
        return nn.functional.cross_entropy(outputs, batch["labels"]["emotion"], weight=class_weight)
    return sum(ccc_loss(outputs[:, i], batch["labels"][d], batch["masks"][d])
               for i, d in enumerate(targets.dimensions)) / len(targets.dimensions)


def score(outputs: np.ndarray, references: dict[str, np.ndarray], masks: dict[str, np.ndarray],
          targets: Targets) -> dict:
    """Test/dev scores. Categorical: :func:`classification_metrics`; dimensional: CCC per dimension and mean
    (``uar`` then holds the mean CCC so that model selection reads one key)."""
    if targets.categorical:
        return classification_metrics(references["emotion"], outputs.argmax(1), targets.class_names)
    per_dim = {d: ccc(outputs[masks[d], i], references[d][masks[d]]) for i, d in enumerate(targets.dimensions)}
    mean = float(np.mean(list(per_dim.values())))
    return {"ccc": per_dim, "mean_ccc": mean, "uar": mean, "count": int(len(outputs))}


# ----------------------------------------------------------------------------------------------------------
# Training one split.

class EmbeddingDataset(torch.utils.data.Dataset):
    """Precomputed pooled embeddings + labels (probe mode); items like SegmentDataset's, batched by
    :func:`collate_embeddings`."""

    def __init__(self, embeddings: torch.Tensor, labels: dict, masks: dict):
        self.embeddings, self.labels, self.masks = embeddings, labels, masks

    def __len__(self):
        return len(self.embeddings)

    def __getitem__(self, key: int):
        i = int(key) % len(self.embeddings)  # EpochSampler keys carry the epoch
        return (self.embeddings[i], {t: v[i] for t, v in self.labels.items()},
                {t: v[i] for t, v in self.masks.items()})


def collate_embeddings(items):
    return {"embeddings": torch.stack([e for e, _, _ in items]), "labels": stack_by_task([it[1] for it in items]),
            "masks": stack_by_task([it[2] for it in items]), "skipped": 0}


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


@torch.no_grad()
def embed(accelerator, encoder, loader) -> torch.Tensor:
    """Pooled embeddings (N, D) of a loader's items, in order (probe mode computes them once)."""
    encoder.eval()
    pooled = [accelerator.gather_for_metrics(encoder(b["wavs"], b["lengths"]).pooled.float()).cpu() for b in loader]
    return torch.cat(pooled)


def _loaders(config, split_tables: dict, targets: Targets, processes: int = 1):
    names = targets.names
    train_set = SegmentDataset(split_tables["train"], names, config.max_seconds, True, config.seed,
                               config.skip_bad_audio)
    eval_sets = {part: SegmentDataset(split_tables[part], names, config.eval_max_seconds, False, config.seed,
                                      config.skip_bad_audio) for part in ("dev", "test")}
    common = {"collate_fn": collate, "num_workers": config.num_workers,
              "persistent_workers": config.num_workers > 0}
    sampler = EpochSampler(len(train_set), config.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, sampler=sampler,
                                               drop_last=train_drop_last(len(train_set), config.batch_size,
                                                                         processes), **common)
    eval_loaders = {part: torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=False, **common)
                    for part, ds in eval_sets.items()}
    return train_loader, sampler, eval_loaders


def _optimizer(config, model: SERModel, pretrained: bool):
    encoder_lr = config.lr * (config.encoder_lr_mult if pretrained else 1.0)
    groups = [{"params": list(model.head.parameters()), "lr": config.lr}]
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


def train_split(config: FinetuneConfig, split: Split, targets: Targets, out: Path, accelerator) -> dict:
    """Train on ``split.train``, select on ``split.dev``, score ``split.test``; write ``out``; return metrics.

    The accelerator is shared by every split of a run and every cell of an experiment, and ``prepare`` keeps a
    reference to each model, optimiser and loader it wraps: without ``free_memory`` each split would leave its
    model and its loaders' persistent worker processes alive until the run ends (6 processes per cell).
    """
    try:
        return _train_split(config, split, targets, out, accelerator)
    finally:
        accelerator.free_memory()  # drops prepare()'s references; gc then shuts the loaders' workers down


def _train_split(config: FinetuneConfig, split: Split, targets: Targets, out: Path, accelerator) -> dict:
    from accelerate.utils import set_seed

    set_seed(config.seed)
    train_rows = split.train
    if config.label_fraction < 1:
        label_column = "label" if targets.categorical else "speaker"
        train_rows = label_subset(train_rows, config.label_fraction, config.seed, label_column)
    tables, skipped = {}, []
    for part, rows in (("train", train_rows), ("dev", split.dev), ("test", split.test)):
        probed, bad = probe_durations(rows, config.skip_bad_audio)
        tables[part], skipped = segment_table(probed, targets), skipped + bad
    encoder, pretrained, source = resolve_init(config)
    model = SERModel(encoder, targets.num_outputs, config.head, config.head_hidden, config.dropout)
    class_weight = None
    if config.class_weights and targets.categorical:
        counts = np.bincount(tables["train"]["emotion_label"], minlength=targets.num_outputs).astype(np.float64)
        class_weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / targets.num_outputs, dtype=torch.float32,
                                    device=accelerator.device)

    if config.mode == "probe":
        model.encoder.requires_grad_(False)  # also keeps DDP from waiting for gradients that never come
        train_loader, sampler, eval_loaders = _probe_loaders(config, accelerator, model, tables, targets)
    else:
        train_loader, sampler, eval_loaders = _loaders(config, tables, targets, accelerator.num_processes)
    freeze_epochs = config.freeze_epochs if (pretrained and config.mode == "finetune") else 0
    # What each process's sharded loader yields (an epoch with none would train nothing, silently).
    steps_per_epoch = check_can_progress(len(train_loader.dataset), config.batch_size, accelerator.num_processes,
                                         train_loader.drop_last, f"{split.name}: the training set",
                                         "check the manifest and --label-fraction (or the skipped files)")
    optimizer = _optimizer(config, model, pretrained)
    scheduler = _scheduler(optimizer, config, steps_per_epoch, freeze_epochs * steps_per_epoch)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    eval_loaders = {part: accelerator.prepare(loader) for part, loader in eval_loaders.items()}

    history, best = [], {"smoothed": -math.inf, "epoch": -1, "state": None}
    started = time.perf_counter()
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)
        model.train()
        if epoch < freeze_epochs or config.mode == "probe":
            accelerator.unwrap_model(model).encoder.eval()  # frozen: BatchNorm statistics stay as pretrained
        loss_sum, batches = 0.0, 0
        for batch in train_loader:
            loss = compute_loss(model(batch), batch, targets, class_weight)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            loss_sum, batches = loss_sum + float(loss.detach()), batches + 1
        if not batches:  # check_can_progress said otherwise: never report an untrained model as trained
            raise RuntimeError(f"{split.name} epoch {epoch + 1}: the training loader yielded no batch")
        dev = score(*predict_loader(accelerator, model, eval_loaders["dev"]), targets)
        window = ([h["dev_uar"] for h in history] + [dev["uar"]])[-config.smooth:]
        record = {"epoch": epoch + 1, "train_loss": loss_sum / max(batches, 1), "dev_uar": dev["uar"],
                  "dev_smoothed": float(np.mean(window)), "lr": scheduler.get_last_lr()[0],
                  "elapsed_s": round(time.perf_counter() - started, 2)}
        history.append(record)
        if record["dev_smoothed"] > best["smoothed"]:
            state = accelerator.unwrap_model(model).state_dict()
            best = {"smoothed": record["dev_smoothed"], "epoch": epoch + 1, "dev": dev,
                    "state": {k: v.detach().clone() for k, v in state.items()}}
        if config.progress:
            accelerator.print(f"{split.name} epoch {epoch + 1}: loss {record['train_loss']:.3f} dev "
                              f"{'UAR' if targets.categorical else 'CCC'} {dev['uar']:.3f} "
                              f"(smoothed {record['dev_smoothed']:.3f})")
        if epoch + 1 - best["epoch"] >= config.patience:
            break
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.load_state_dict(best["state"])
    test = score(*predict_loader(accelerator, model, eval_loaders["test"]), targets)
    result = {"split": split.name, "test": test, "best_epoch": best["epoch"], "epochs_run": len(history),
              "dev": best["dev"], "dev_smoothed": best["smoothed"], "init": source, "pretrained": pretrained,
              "mode": config.mode, "label_fraction": config.label_fraction, "seed": config.seed,
              "train_items": len(tables["train"]), "dev_items": len(tables["dev"]),
              "test_items": len(tables["test"]), "test_speakers": split.test_speakers,
              "dev_speakers": sorted(split.dev["speaker"].unique()), "skipped_bad_audio": skipped,
              "train_seconds": round(time.perf_counter() - started, 2)}
    if accelerator.is_main_process:
        _write_split(out, result, history, unwrapped, targets, config.save_model)
    accelerator.wait_for_everyone()
    return result


# Pooled embeddings by (encoder weights, crop length) and file: an experiment's probe cells that share an
# encoder (every fraction of a fold, or every seed of a pretrained encoder) embed each file once.
_EMBEDDINGS: dict[str, dict[str, torch.Tensor]] = {}
_EMBEDDINGS_KEPT = 4  # encoders whose embeddings stay cached (a few MB each)


def _encoder_key(encoder, max_seconds: float) -> str:
    import hashlib

    digest = hashlib.sha1(f"{max_seconds}".encode())
    for name, value in encoder.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _embed_table(config, accelerator, encoder, table, names: list[str]) -> torch.Tensor:
    """(N, D) pooled embeddings of a segment table's files (whole utterances up to eval_max_seconds)."""
    key = _encoder_key(encoder, config.eval_max_seconds)
    cache = _EMBEDDINGS.setdefault(key, {})
    while len(_EMBEDDINGS) > _EMBEDDINGS_KEPT:
        _EMBEDDINGS.pop(next(iter(_EMBEDDINGS)))
    missing = table[~table["audio_path"].isin(cache)].drop_duplicates("audio_path").reset_index(drop=True)
    if len(missing):
        # No random crops: the probe sees one fixed feature vector per file.
        dataset = SegmentDataset(missing, names, config.eval_max_seconds, False, config.seed, config.skip_bad_audio)
        loader = accelerator.prepare(torch.utils.data.DataLoader(dataset, batch_size=config.batch_size,
                                                                 collate_fn=collate, num_workers=0))
        for path, vector in zip(missing["audio_path"], embed(accelerator, encoder.to(accelerator.device), loader)):
            cache[path] = vector
    return torch.stack([cache[path] for path in table["audio_path"]])


def _probe_loaders(config, accelerator, model: SERModel, tables: dict, targets: Targets):
    """Embed every split with the frozen encoder (cached); the head then trains on (B, D) embeddings."""
    sets, names = {}, targets.names
    for part, table in tables.items():
        labels = SegmentDataset(table, names)
        embeddings = _embed_table(config, accelerator, model.encoder, table, names)
        sets[part] = EmbeddingDataset(embeddings, labels.labels, labels.masks)
    model.head[0].fit(sets["train"].embeddings)
    sampler = EpochSampler(len(sets["train"]), config.seed)
    common = {"batch_size": config.batch_size, "collate_fn": collate_embeddings}
    train_loader = torch.utils.data.DataLoader(sets["train"], sampler=sampler, **common)
    eval_loaders = {part: torch.utils.data.DataLoader(sets[part], shuffle=False, **common) for part in ("dev", "test")}
    return train_loader, sampler, eval_loaders


def _write_split(out: Path, result: dict, history: list, model: SERModel, targets: Targets, keep_model: bool):
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "history.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(h) + "\n" for h in history)
    if targets.categorical:
        plot_confusion(result["test"]["confusion"], targets.class_names, out / "confusion.png",
                       f"{result['split']}: UAR {result['test']['uar']:.3f}")
    if keep_model:
        save_model(model, targets, out / MODEL_DIR)
    write_json_atomic(out / "metrics.json", result)


# ----------------------------------------------------------------------------------------------------------
# All splits.

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
    manifest = load_manifest(config.manifest)
    targets = resolve_targets(manifest, config.classes, config.dimensions, config.manifest)
    if targets.categorical:
        manifest = manifest[manifest["label"].isin(targets.class_names)].reset_index(drop=True)
    splits = make_splits(manifest, config.protocol, config.num_folds, config.dev_speakers, config.split_seed,
                         config.manifest)
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
        resolve_init(config)
    except (TypeError, OSError) as err:  # a mistyped option, an encoder folder with missing files
        raise ValueError(f"--init {config.init}: {type(err).__name__}: {err}") from None


def run(config: FinetuneConfig) -> dict:
    """Fine-tune and test on every selected split; write OUT (see the module docstring); return the summary."""
    from accelerate import Accelerator

    out = check_output_folder(config.out)
    targets, splits = load_splits(config)
    check_init(config)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", dataclasses.asdict(config))
    results = [train_split(config, split, targets, out / split.name, accelerator) for split in splits]
    summary = summarize(results, targets) | {"classes": targets.class_names, "dimensions": targets.dimensions}
    if accelerator.is_main_process:
        write_json_atomic(out / "metrics.json", summary)
        if targets.categorical:
            plot_confusion(summary["pooled"]["confusion"], targets.class_names, out / "confusion.png",
                           f"pooled over {len(results)} split(s): UAR {summary['pooled']['uar']:.3f}")
    return summary


def parse_args(argv=None) -> FinetuneConfig:
    return parse_config(FinetuneConfig, argv, "Fine-tune and evaluate a speech encoder for SER.", required=("manifest",))


def main(argv=None) -> int:
    config = parse_args(argv)
    try:
        summary = run(config)
    except (ValueError, AudioError, NotADirectoryError) as err:  # user/input errors: one line, exit 2
        print(f"finetune/train.py: error: {err}", file=sys.stderr)
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
