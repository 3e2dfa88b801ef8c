"""The pretraining config: one dataclass whose fields are the options of ``pretext/train.py`` (each field's
comment is its ``--help`` text), and the check of their ranges."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from pretext.tasks import DEFAULT_TASKS

# Fields that define what is trained: a resumed run must match them exactly (solo-learn's SHOULD_MATCH).
RUN_CONFIG_FILE = "config.json"  # a pretraining run's TrainConfig, in its --out folder
MUST_MATCH_ON_RESUME = ("data", "tasks", "encoder", "encoder_options", "head_hidden", "init_encoder")


@dataclass
class TrainConfig:
    data: str = ""  # a `data_prep label` output folder (or its segments.parquet)
    tasks: str = ",".join(DEFAULT_TASKS)  # registry names or module:Class plug-ins
    encoder: str = "cnn"  # architecture: cnn | crnn | transformer (encoders.ENCODERS)
    out: str = "runs/pretext"  # run folder: config.json, metrics.jsonl, checkpoints/, encoder/
    encoder_options: dict = field(default_factory=dict)  # overrides of the encoder's Config
    init_encoder: str = ""  # an exported encoder folder (a run's encoder/) to start from: continued pretraining
    #                         (its architecture must be --encoder with --encoder-options; the heads start anew)
    task_weights: dict = field(default_factory=dict)  # task -> loss weight (default 1)
    head_hidden: int = 128  # width of each task head's hidden layer
    max_steps: int = 2000  # optimizer steps in total (the schedule ends here)
    batch_size: int = 16  # per process
    grad_accum: int = 1  # batches per optimizer step
    lr: float = 3e-4  # peak AdamW learning rate
    weight_decay: float = 0.01  # AdamW weight decay
    warmup_steps: int = 100  # linear warm-up, then cosine decay to 0 at max_steps
    max_seconds: float = 6.0  # segments are randomly cropped to this length when training
    val_fraction: float = 0.1  # of the media items (never of segments: no recording on both sides)
    num_workers: int = 2  # audio-loading worker processes per training process
    mixed_precision: str = "no"  # no | bf16 | fp16 (passed to Accelerate)
    report_to: str = "auto"  # Accelerate trackers, comma-separated (tensorboard, wandb, ...); auto: tensorboard
    #                          when installed; none: only metrics.jsonl (always written)
    eval_every: int = 200  # steps between validation passes
    checkpoint_every: int = 200  # steps between checkpoints (safetensors + JSON; exact resume)
    keep_checkpoints: int = 3  # newest checkpoints kept; older ones are deleted
    log_every: int = 10  # steps between training lines in metrics.jsonl
    seed: int = 0  # seeds weights, crops and the sampler (per process)
    resume: bool = False  # continue the run in --out from its newest checkpoint
    skip_bad_audio: bool = False  # drop unreadable audio files (counted) instead of stopping
    # DeepEmoCluster's loop (pretext.deep_cluster): after every N epochs, re-cluster the cluster task's segments
    # on the encoder's own embeddings and re-initialise its head. 0: the label stage's clusters throughout.
    recluster_every: int = 0


def check_options(config: TrainConfig) -> None:
    """ValueError naming the first option out of its range (a zero --log-every would otherwise fail at the
    first step, a negative --lr at the optimizer, both after the run folder was written)."""
    def flag(name):
        return "--" + name.replace("_", "-")

    for name in ("max_steps", "batch_size", "grad_accum", "head_hidden", "eval_every", "checkpoint_every",
                 "keep_checkpoints", "log_every"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{flag(name)} {value}: must be a whole number >= 1")
    for name in ("warmup_steps", "num_workers", "seed"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{flag(name)} {value}: must be a whole number >= 0")
    checks = {"lr": (config.lr > 0, "> 0"), "weight_decay": (config.weight_decay >= 0, ">= 0"),
              "max_seconds": (config.max_seconds > 0, "> 0"),
              "val_fraction": (config.val_fraction >= 0, ">= 0")}  # too high: "no training segment" later
    for name, (ok, wanted) in checks.items():
        value = getattr(config, name)
        if not (ok and math.isfinite(value)):
            raise ValueError(f"{flag(name)} {value}: must be {wanted}")
    if config.mixed_precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"--mixed-precision {config.mixed_precision}: choose from no, bf16, fp16")
