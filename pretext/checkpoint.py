"""Persistence of a pretraining run: its checkpoints, written in formats that cannot execute code (safetensors
for tensors, JSON for the rest), kept rotating, and the newest one restored on resume.

A run folder keeps its newest ``keep`` checkpoints as ``RUN/checkpoints/step_N``. Each is written under a
hidden name (``.step_N.partial``) and renamed once every process has finished, so a run killed mid-save never
leaves a half-written ``step_N`` for ``--resume``. A checkpoint folder holds exactly::

    model.safetensors        the unwrapped model's weights
    optimizer.safetensors    the optimizer's per-parameter tensors, keyed ``state.<param>.<name>``
    optimizer.json           its other state (param groups, non-tensor entries)
    scheduler.json           the learning-rate scheduler's state
    train_state.json         step, epoch, batch in the epoch
    rng_<rank>.json          per process: python ``random`` and numpy's legacy global state (scalars)
    rng_<rank>.safetensors   per process: torch CPU (and CUDA) generator states, numpy's key array

Nothing is ever unpickled (no ``torch.load``, no ``pickle``, no ``accelerator.load_state``). A folder holding
any other file, or a corrupt, truncated or mismatching one, is refused with :class:`CheckpointError` naming
the file.
"""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from encoders.io import LoadError, check_folder_files, check_tensors, read_json, read_safetensors

CHECKPOINT_DIR = "checkpoints"
MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
SCHEDULER_FILE = "scheduler.json"
TRAIN_STATE_FILE = "train_state.json"
SHARED_FILES = (MODEL_FILE, OPTIMIZER_TENSORS, OPTIMIZER_JSON, SCHEDULER_FILE, TRAIN_STATE_FILE)


class CheckpointError(LoadError):
    """A checkpoint file that is unexpected, corrupt or does not fit the run: ``<path>: <reason>``."""


@dataclass
class TrainState:
    """The training loop's counters, saved with every checkpoint (``train_state.json``)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches of the current epoch already trained on (a resumed epoch skips them)


@dataclass
class Checkpointed:
    """The live objects whose state a checkpoint saves and restores."""

    model: torch.nn.Module  # as prepared by Accelerate; its unwrapped weights are saved
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler  # stepped once per optimizer step, not prepared
    # Named generators drawn from outside the global RNG (e.g. a loader's), restored per process.
    generators: dict[str, torch.Generator] = field(default_factory=dict)


def rng_files(rank: int) -> tuple[str, str]:
    return f"rng_{rank}.json", f"rng_{rank}.safetensors"


def expected_files(num_processes: int) -> set[str]:
    return set(SHARED_FILES) | {name for rank in range(num_processes) for name in rng_files(rank)}


def _save_tensors(tensors: dict, path: Path) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1))


# ----------------------------------------------------------------------------------------------------------
# Optimizer, scheduler, RNG: state dicts <-> (tensors, JSON).

def optimizer_to_files(state: dict) -> tuple[dict, dict]:
    """A torch optimizer ``state_dict()`` -> (tensors, JSON-able rest)."""
    tensors, scalars = {}, {}
    for param, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param}.{name}"] = value
            else:
                scalars.setdefault(str(param), {})[name] = value
    params = sorted(state["state"], key=int)
    return tensors, {"params_with_state": [int(p) for p in params], "scalars": scalars,
                     "param_groups": state["param_groups"]}


def optimizer_from_files(tensors: dict, info: dict, current: dict, where: Path) -> dict:
    """Rebuild an optimizer state dict; checked against the ``current`` one (same groups, same keys)."""
    groups = info.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(current["param_groups"]):
        raise CheckpointError(where, f"expected {len(current['param_groups'])} param group(s)")
    for saved, now in zip(groups, current["param_groups"]):
        if not isinstance(saved, dict) or set(saved) != set(now) or saved["params"] != now["params"]:
            raise CheckpointError(where, "param groups do not match this run's optimizer")
        for key, value in now.items():  # JSON turned tuples (e.g. AdamW's betas) into lists
            if isinstance(value, tuple):
                saved[key] = tuple(saved[key])
    state: dict = {}
    for name, value in tensors.items():
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise CheckpointError(where.with_suffix(".safetensors"), f"unexpected tensor {name!r}")
        state.setdefault(int(parts[1]), {})[parts[2]] = value
    for param, entries in (info.get("scalars") or {}).items():
        state.setdefault(int(param), {}).update(entries)
    if sorted(state) != sorted(info.get("params_with_state", [])):
        raise CheckpointError(where.with_suffix(".safetensors"), "tensors do not match the saved parameter list")
    return {"state": state, "param_groups": groups}


def capture_rng(generators: dict[str, torch.Generator] | None = None) -> tuple[dict, dict]:
    """This process's RNG states -> (JSON-able, tensors)."""
    version, mt_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    info = {"python": [version, list(mt_state), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)],
            "cuda": False, "generators": sorted(generators or {})}
    tensors = {"torch_cpu": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # This process's device only (Accelerate makes it the current one): every rank touching every GPU's
        # generator would create a context on each.
        info["cuda"] = True
        tensors["cuda"] = torch.cuda.get_rng_state()
    for name, generator in (generators or {}).items():
        tensors[f"generator_{name}"] = generator.get_state()
    return info, tensors


def restore_rng(info: dict, tensors: dict, generators: dict[str, torch.Generator] | None, where: Path) -> None:
    json_path, tensor_path = where.with_suffix(".json"), where.with_suffix(".safetensors")
    names = sorted(generators or {})
    try:
        version, mt_state, gauss = info["python"]
        kind, pos, has_gauss, cached = info["numpy"]
        cuda = info["cuda"]
        if not isinstance(cuda, bool):
            raise TypeError(f"'cuda' must be true or false, not {cuda!r}")
        if info["generators"] != names:
            raise ValueError(f"generators {info['generators']}, this run has {names}")
        python_state = (int(version), tuple(int(x) for x in mt_state), gauss)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(json_path, f"not a valid RNG state ({type(err).__name__}: {err})") from None
    expected = {"torch_cpu": torch.get_rng_state(), "numpy_keys": torch.zeros(624)}
    if cuda:
        expected["cuda"] = tensors.get("cuda", torch.zeros(0))  # its size is checked by set_rng_state
    expected |= {f"generator_{name}": generators[name].get_state() for name in names}
    check_tensors(tensor_path, tensors, expected)
    try:
        random.setstate(python_state)
        np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), int(pos), int(has_gauss),
                             float(cached)))
        torch.set_rng_state(tensors["torch_cpu"])
        if cuda:
            if not torch.cuda.is_available():
                raise ValueError("saved by a process on a CUDA device; this one has none")
            torch.cuda.set_rng_state(tensors["cuda"])
        for name in names:
            generators[name].set_state(tensors[f"generator_{name}"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(tensor_path, f"cannot restore the RNG state ({type(err).__name__}: {err})") from None


# ----------------------------------------------------------------------------------------------------------
# Save / load a whole checkpoint folder.

def save_checkpoint(folder: Path, accelerator, objects: Checkpointed, state: TrainState) -> None:
    """Write the checkpoint files into an existing ``folder``: shared files from the main process, one RNG
    pair per process. Call on every process."""
    folder = Path(folder)
    if accelerator.is_main_process:
        _save_tensors(accelerator.unwrap_model(objects.model).state_dict(), folder / MODEL_FILE)
        tensors, info = optimizer_to_files(objects.optimizer.state_dict())
        _save_tensors(tensors, folder / OPTIMIZER_TENSORS)
        _write_json(folder / OPTIMIZER_JSON, info)
        _write_json(folder / SCHEDULER_FILE, objects.scheduler.state_dict())
        _write_json(folder / TRAIN_STATE_FILE, dataclasses.asdict(state))
    info, tensors = capture_rng(objects.generators)
    json_name, tensor_name = rng_files(accelerator.process_index)
    _write_json(folder / json_name, info)
    _save_tensors(tensors, folder / tensor_name)


def load_checkpoint(folder: Path, accelerator, objects: Checkpointed) -> TrainState:
    """Restore what :func:`save_checkpoint` wrote; returns the train state. :class:`CheckpointError` (a
    ValueError) naming the file for anything unexpected, corrupt or mismatching; nothing is unpickled."""
    folder = Path(folder)
    optimizer, scheduler = objects.optimizer, objects.scheduler
    try:
        check_folder_files(folder, expected_files(accelerator.num_processes))
        unwrapped = accelerator.unwrap_model(objects.model)
        weights = read_safetensors(folder / MODEL_FILE, unwrapped.state_dict())
        current = optimizer.state_dict()
        optimizer_state = optimizer_from_files(read_safetensors(folder / OPTIMIZER_TENSORS),
                                               read_json(folder / OPTIMIZER_JSON), current,
                                               folder / OPTIMIZER_JSON)
        _check_optimizer_shapes(optimizer_state, current, unwrapped, folder / OPTIMIZER_TENSORS)
        scheduler_state = read_json(folder / SCHEDULER_FILE)
        train_state = read_json(folder / TRAIN_STATE_FILE)
        keys = [f.name for f in dataclasses.fields(TrainState)]
        if not isinstance(train_state, dict) or set(train_state) != set(keys) \
                or not all(type(train_state[k]) is int and train_state[k] >= 0 for k in keys):
            raise CheckpointError(folder / TRAIN_STATE_FILE, f"expected non-negative integers {list(keys)}")
        # The schedule moves once per optimizer step (fewer when mixed precision skipped steps), never more: a
        # scheduler ahead of the step count was stepped once per process and would resume late in its decay.
        if isinstance(scheduler_state, dict) and isinstance(scheduler_state.get("last_epoch"), int) \
                and scheduler_state["last_epoch"] > train_state["step"]:
            raise CheckpointError(folder / SCHEDULER_FILE,
                                  f"the schedule is at step {scheduler_state['last_epoch']}, the run at step "
                                  f"{train_state['step']} (stepped once per process); resume is not exact: "
                                  "start a new run")
        json_name, tensor_name = rng_files(accelerator.process_index)
        rng_info, rng_tensors = read_json(folder / json_name), read_safetensors(folder / tensor_name)
    except LoadError as err:
        raise CheckpointError(err.path, err.reason) from None
    unwrapped.load_state_dict(weights)
    try:
        optimizer.load_state_dict(optimizer_state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(folder / OPTIMIZER_JSON, f"does not fit this run's optimizer ({err})") from None
    try:
        if set(scheduler_state) != set(scheduler.state_dict()):
            raise ValueError(f"keys {sorted(scheduler_state)}, expected {sorted(scheduler.state_dict())}")
        scheduler.load_state_dict(scheduler_state)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(folder / SCHEDULER_FILE, f"does not fit this run's scheduler ({err})") from None
    restore_rng(rng_info, rng_tensors, objects.generators, folder / json_name)
    return TrainState(**train_state)


def _check_optimizer_shapes(state: dict, current: dict, model, where: Path) -> None:
    """Per-parameter optimizer tensors must have their parameter's shape (``step`` is a scalar)."""
    params = [p for group in current["param_groups"] for p in group["params"]]
    shapes = dict(zip(params, (tuple(p.shape) for p in model.parameters())))
    for param, entries in state["state"].items():
        if param not in shapes:
            raise CheckpointError(where, f"optimizer state for unknown parameter {param}")
        for name, value in entries.items():
            if isinstance(value, torch.Tensor) and value.dim() and tuple(value.shape) != shapes[param]:
                raise CheckpointError(where, f"tensor 'state.{param}.{name}' has shape {tuple(value.shape)}, "
                                             f"expected {shapes[param]}")


# ----------------------------------------------------------------------------------------------------------
# A run's checkpoints: rotation and resume.

def checkpoint_folders(out: Path) -> list[Path]:
    """``OUT/checkpoints/step_N`` folders, oldest first (hidden ``.step_N.partial`` ones are never used)."""
    found = [p for p in (Path(out) / CHECKPOINT_DIR).glob("step_*") if p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def save_rotating(out: Path, accelerator, objects: Checkpointed, state: TrainState, keep: int) -> Path:
    """Save the full state as ``OUT/checkpoints/step_<state.step>`` (written hidden, then renamed) and delete
    all but the newest ``keep`` checkpoints. Call on every process; returns the folder."""
    folder = Path(out) / CHECKPOINT_DIR / f"step_{state.step}"
    partial = folder.with_name(f".{folder.name}.partial")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # left by an earlier killed save
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_checkpoint(partial, accelerator, objects, state)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        for old in checkpoint_folders(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return folder


def load_newest(out: Path, accelerator, objects: Checkpointed) -> tuple[Path, TrainState] | None:
    """Restore the newest checkpoint of the run folder ``out`` into ``objects`` (every process); returns its
    folder and train state, or None when the run has no checkpoint."""
    folders = checkpoint_folders(out)
    if not folders:
        return None
    return folders[-1], load_checkpoint(folders[-1], accelerator, objects)
