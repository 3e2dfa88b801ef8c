"""Pretext checkpoints in formats that cannot execute code: safetensors for tensors, JSON for the rest.

A checkpoint folder ``step_N`` holds exactly::

    model.safetensors        the unwrapped model's weights
    optimizer.safetensors    the optimiser's per-parameter tensors, keyed ``state.<param>.<name>``
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

import random
from pathlib import Path

import numpy as np
import torch

from encoders.io import LoadError, check_folder_files, check_tensors, read_json, read_safetensors

MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
SCHEDULER_FILE = "scheduler.json"
TRAIN_STATE_FILE = "train_state.json"
SHARED_FILES = (MODEL_FILE, OPTIMIZER_TENSORS, OPTIMIZER_JSON, SCHEDULER_FILE, TRAIN_STATE_FILE)


class CheckpointError(LoadError):
    """A checkpoint file that is unexpected, corrupt or does not fit the run: ``<path>: <reason>``."""


def rng_files(rank: int) -> tuple[str, str]:
    return f"rng_{rank}.json", f"rng_{rank}.safetensors"


def expected_files(num_processes: int) -> set[str]:
    return set(SHARED_FILES) | {name for rank in range(num_processes) for name in rng_files(rank)}


def _save_tensors(tensors: dict, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def _write_json(path: Path, value) -> None:
    import json

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
            raise CheckpointError(where, "param groups do not match this run's optimiser")
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

def save_checkpoint(folder: Path, accelerator, model, optimizer, scheduler, train_state: dict,
                    generators: dict[str, torch.Generator] | None = None) -> None:
    """Write the checkpoint files into an existing ``folder``: shared files from the main process, one RNG
    pair per process. Call on every process."""
    folder = Path(folder)
    if accelerator.is_main_process:
        _save_tensors(accelerator.unwrap_model(model).state_dict(), folder / MODEL_FILE)
        tensors, info = optimizer_to_files(optimizer.state_dict())
        _save_tensors(tensors, folder / OPTIMIZER_TENSORS)
        _write_json(folder / OPTIMIZER_JSON, info)
        _write_json(folder / SCHEDULER_FILE, scheduler.state_dict())
        _write_json(folder / TRAIN_STATE_FILE, train_state)
    info, tensors = capture_rng(generators)
    json_name, tensor_name = rng_files(accelerator.process_index)
    _write_json(folder / json_name, info)
    _save_tensors(tensors, folder / tensor_name)


def load_checkpoint(folder: Path, accelerator, model, optimizer, scheduler,
                    generators: dict[str, torch.Generator] | None = None) -> dict:
    """Restore what :func:`save_checkpoint` wrote; returns the train state. :class:`CheckpointError` (a
    ValueError) naming the file for anything unexpected, corrupt or mismatching; nothing is unpickled."""
    folder = Path(folder)
    try:
        check_folder_files(folder, expected_files(accelerator.num_processes))
        unwrapped = accelerator.unwrap_model(model)
        weights = read_safetensors(folder / MODEL_FILE, unwrapped.state_dict())
        current = optimizer.state_dict()
        optimizer_state = optimizer_from_files(read_safetensors(folder / OPTIMIZER_TENSORS),
                                               read_json(folder / OPTIMIZER_JSON), current,
                                               folder / OPTIMIZER_JSON)
        _check_optimizer_shapes(optimizer_state, current, unwrapped, folder / OPTIMIZER_TENSORS)
        scheduler_state = read_json(folder / SCHEDULER_FILE)
        train_state = read_json(folder / TRAIN_STATE_FILE)
        keys = ("step", "epoch", "batch_in_epoch")
        if set(train_state) != set(keys) or not all(type(train_state[k]) is int and train_state[k] >= 0
                                                    for k in keys):
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
        raise CheckpointError(folder / OPTIMIZER_JSON, f"does not fit this run's optimiser ({err})") from None
    try:
        if set(scheduler_state) != set(scheduler.state_dict()):
            raise ValueError(f"keys {sorted(scheduler_state)}, expected {sorted(scheduler.state_dict())}")
        scheduler.load_state_dict(scheduler_state)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(folder / SCHEDULER_FILE, f"does not fit this run's scheduler ({err})") from None
    restore_rng(rng_info, rng_tensors, generators, folder / json_name)
    return train_state


def _check_optimizer_shapes(state: dict, current: dict, model, where: Path) -> None:
    """Per-parameter optimiser tensors must have their parameter's shape (``step`` is a scalar)."""
    params = [p for group in current["param_groups"] for p in group["params"]]
    shapes = dict(zip(params, (tuple(p.shape) for p in model.parameters())))
    for param, entries in state["state"].items():
        if param not in shapes:
            raise CheckpointError(where, f"optimiser state for unknown parameter {param}")
        for name, value in entries.items():
            if isinstance(value, torch.Tensor) and value.dim() and tuple(value.shape) != shapes[param]:
                raise CheckpointError(where, f"tensor 'state.{param}.{name}' has shape {tuple(value.shape)}, "
                                             f"expected {shapes[param]}")
