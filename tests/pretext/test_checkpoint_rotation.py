"""A run's checkpoints (pretext.checkpoint): rotation keeps the newest ``keep``, a killed save's hidden folder is
never used, and the newest checkpoint restores the exact state it saved."""
from __future__ import annotations

import torch
from accelerate import Accelerator

from avpretext.common.schedules import build_scheduler
from pretext.checkpoint import (CHECKPOINT_DIR, Checkpointed, TrainState, checkpoint_folders, load_newest,
                                save_rotating)


def _objects(seed: int) -> Checkpointed:
    """A small model with an AdamW state after one step, its warm-up schedule and a loader generator."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = build_scheduler(optimizer, 2, 10)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    return Checkpointed(model, optimizer, scheduler, {"train_loader": torch.Generator().manual_seed(seed)})


def test_rotation_keeps_the_newest_and_resume_restores_them(tmp_path):
    accelerator = Accelerator(cpu=True)
    assert load_newest(tmp_path, accelerator, _objects(0)) is None  # no checkpoint yet
    saved = _objects(1)
    stale = tmp_path / CHECKPOINT_DIR / ".step_3.partial"  # left by a save killed half-way
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"torn")
    for step in (1, 2, 3, 10):
        folder = save_rotating(tmp_path, accelerator, saved, TrainState(step, step // 4, step % 4), keep=2)
        assert folder == tmp_path / CHECKPOINT_DIR / f"step_{step}"
    assert [p.name for p in checkpoint_folders(tmp_path)] == ["step_3", "step_10"]  # numeric order, not text
    assert sorted(p.name for p in (tmp_path / CHECKPOINT_DIR).iterdir()) == ["step_10", "step_3"]

    restored = _objects(2)  # other weights, optimizer moments and generator state
    folder, state = load_newest(tmp_path, accelerator, restored)
    assert folder.name == "step_10" and state == TrainState(10, 2, 2)
    for a, b in zip(saved.model.parameters(), restored.model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(saved.optimizer.state.values(), restored.optimizer.state.values()):
        assert all(torch.equal(a[key], b[key]) for key in ("exp_avg", "exp_avg_sq"))
    assert restored.scheduler.state_dict()["last_epoch"] == 1
    assert torch.equal(restored.generators["train_loader"].get_state(), saved.generators["train_loader"].get_state())
