"""What makes a run repeat itself and resume exactly: the seeded per-epoch sampler and the learning-rate
schedule, shared by pretraining and fine-tuning."""
from __future__ import annotations

import math

import torch


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's random draws (sampler order, loader worker seeds): a function of the run's seed
    and the epoch only, so a resumed run draws what an uninterrupted one does."""
    return seed * 1000003 + epoch


class EpochSampler(torch.utils.data.Sampler):
    """A seeded permutation per epoch, so a resumed run sees the same order as an uninterrupted one.

    Yields ``epoch * size + i``: the dataset reads the epoch from the index (for its random crops), so its
    crops need no other notice of the epoch.

    ``start`` skips the first items of the epoch's permutation: a resumed run sets it to the items already
    trained on (batches x batch size x processes), so the loader (and Accelerate's per-process batch shards)
    yields exactly the rest of the epoch, with no batches read and thrown away (``skip_first_batches``).
    Accelerate's ``set_epoch`` leaves it alone.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch, self.start = size, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.size, generator=generator)[self.start:]
        return iter((order + self.epoch * self.size).tolist())

    def __len__(self) -> int:
        return self.size - min(self.start, self.size)


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(optimizer, warmup: int, total: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, warmup, total))


def step_scheduler(accelerator, scheduler) -> None:
    """Advance ``scheduler`` (not passed to ``accelerator.prepare``) by one optimizer step, however many
    processes train: call it after every ``optimizer.step()``.

    Accelerate's prepared scheduler steps ``num_processes`` times per optimizer step (it assumes a schedule
    counted in one process's batches), so a schedule built for ``max_steps`` optimizer steps would end, and
    warm up, N times too early under N processes. Here the schedule moves once per optimizer step that
    happened: not mid-way through gradient accumulation, not when mixed precision skipped the step (fp16
    overflow), as Accelerate does for one process.
    """
    if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
        scheduler.step()
