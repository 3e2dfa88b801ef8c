"""A run's ``metrics.jsonl``: what each process sums between records, one record summed over the processes per
training log or validation pass (also passed to Accelerate's trackers), its console line, and the records a
resumed run drops.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from avpretext.common.io import write_bytes_atomic
from pretext.tasks import PretextTask

METRICS_FILE = "metrics.jsonl"


@dataclass
class TaskSums:
    """One task's sums over the batches since the last record. The loss is weighted by each batch's labelled
    segments, so batches without labels (loss 0) do not dilute the task's reported loss."""

    counts: torch.Tensor  # float64, the task's metric_shape: e.g. a confusion matrix
    loss: float = 0.0  # sum of batch loss x labelled segments
    labelled: int = 0


@dataclass
class RunningSums:
    """What one process saw since the last record (training) or in one validation pass; :func:`write_record` sums
    it over the processes into one record."""

    tasks: dict[str, TaskSums]
    skipped: int = 0  # unreadable audio files dropped (--skip-bad-audio)
    segments: int = 0
    data_wait_s: float = 0.0  # time the loop waited for the loader

    @classmethod
    def empty(cls, tasks: list[PretextTask], num_classes: dict[str, int], device) -> RunningSums:
        return cls({t.name: TaskSums(torch.zeros(t.metric_shape(num_classes[t.name]), dtype=torch.float64,
                                                 device=device)) for t in tasks})

    def add(self, tasks: list[PretextTask], losses: dict, logits: dict, batch: dict,
            num_classes: dict[str, int]) -> None:
        """Add one batch: its per-task losses and logits, and the batch (``labels``/``masks`` per task)."""
        self.skipped += int(batch["skipped"])
        self.segments += len(batch["lengths"])
        for t in tasks:
            sums = self.tasks[t.name]
            labelled = int(batch["masks"][t.name].sum())
            sums.loss += float(losses[t.name].detach()) * labelled
            sums.labelled += labelled
            sums.counts += t.metric_counts(logits[t.name].detach(), batch["labels"][t.name],
                                           batch["masks"][t.name], num_classes[t.name])


def write_record(accelerator, out: Path, tasks: list[PretextTask], record: dict, running: RunningSums) -> dict:
    """Complete ``record`` (its step, epoch, split, ...) with ``running`` summed over the processes, append it to
    ``OUT/metrics.jsonl`` (main process) and pass its numbers to the trackers. Call on every process."""
    skipped = accelerator.reduce(torch.tensor(running.skipped, device=accelerator.device), reduction="sum")
    record["skipped_bad_audio"] = int(skipped)
    # Segments seen since the last record, over all processes (training: batches completed by cycling count
    # what was trained on; validation: each segment once).
    record["segments"] = int(accelerator.reduce(torch.tensor(running.segments, device=accelerator.device),
                                                reduction="sum"))
    record["data_wait_s"] = round(running.data_wait_s, 4)
    for task in tasks:
        sums = running.tasks[task.name]
        counts = accelerator.reduce(sums.counts, reduction="sum")
        totals = accelerator.reduce(torch.tensor([sums.loss, sums.labelled], dtype=torch.float64,
                                                 device=accelerator.device), reduction="sum")
        # No labelled segment: no loss (null), not a perfect-looking 0.
        loss = float(totals[0] / totals[1]) if totals[1] > 0 else None
        record.update({f"{task.name}/loss": loss,
                       **{f"{task.name}/{k}": v for k, v in task.summarize_metric(counts).items()}})
    if accelerator.is_main_process:
        with open(Path(out) / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    accelerator.log({f"{record['split']}/{k}": v for k, v in record.items() if isinstance(v, (int, float))},
                    step=record["step"])
    return record


def validation_line(record: dict) -> str:
    """One progress line for a validation record: each task's loss (and UAR when it has one)."""
    if not record["segments"]:
        return f"step {record['step']} validation: no validation segments (all unreadable and skipped)"
    parts = []
    for key, loss in record.items():
        if not key.endswith("/loss"):
            continue
        task = key[:-len("/loss")]
        if loss is None:
            parts.append(f"{task} no labelled segments")
            continue
        uar = record.get(f"{task}/uar")
        parts.append(f"{task} {loss:.3f}" + (f" (UAR {uar:.3f})" if isinstance(uar, float) and math.isfinite(uar)
                                              else ""))
    return f"step {record['step']} validation ({record['segments']} segments): " + ", ".join(parts)


def drop_records_after(accelerator, out: Path, step: int) -> None:
    """Keep the records of steps up to ``step`` (a resumed checkpoint's), so ``metrics.jsonl`` holds each step
    once; a line torn by a kill is dropped too. Call on every process."""
    metrics = Path(out) / METRICS_FILE
    if accelerator.is_main_process and metrics.exists():
        kept = []
        for line in metrics.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
                kept.append(line + "\n")
        write_bytes_atomic(metrics, "".join(kept).encode("utf-8"))
    accelerator.wait_for_everyone()
