"""Reading saved JSON and safetensors files without ever unpickling, refusing bad files by name.

Every loader of the project (encoder folders, fine-tuned models, pretext checkpoints) reads through these
helpers, so a corrupt, truncated or crafted file always gives one clear :class:`LoadError` naming it.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from avpretext.common.io import clean_stale_temp_files, write_atomic


class LoadError(ValueError):
    """A saved file (or folder) that is missing, unexpected, corrupt or inconsistent; ``str`` names it."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def check_folder_files(folder: str | Path, expected, error=LoadError) -> None:
    """Refuse a folder holding anything but exactly the ``expected`` entry names (files or subfolders)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise error(folder, "not a folder")
    expected = set(expected)
    present = {p.name for p in folder.iterdir()}
    for name in sorted(present - expected):
        raise error(folder / name, f"unexpected file; {folder} must hold exactly {sorted(expected)}")
    for name in sorted(expected - present):
        raise error(folder / name, "missing")


def read_json(path: str | Path, required=(), error=LoadError) -> dict:
    """A JSON object from ``path``, refused (naming the file) unless it parses and has the ``required`` keys."""
    try:
        obj = json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise error(path, "missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(path, f"not a readable JSON file ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise error(path, f"expected a JSON object, found {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise error(path, f"no {missing} in it")
    return obj


def read_safetensors(path: str | Path, expected: dict | None = None, error=LoadError) -> dict:
    """{name: tensor} from a safetensors file (CPU), refused naming the file when it is not one, or when
    ``expected`` ({name: tensor or shape}) is given and a tensor is missing, unexpected or of another shape."""
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise error(path, "missing") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise error(path, f"not a readable safetensors file ({type(err).__name__}: {err})") from None
    if expected is not None:
        check_tensors(path, tensors, expected, error)
    return tensors


def check_tensors(path: str | Path, tensors: dict, expected: dict, error=LoadError) -> None:
    """Refuse (naming ``path``) tensors missing from, not in, or of another shape than ``expected``
    ({name: tensor or shape})."""
    for name in sorted(set(expected) - set(tensors)):
        raise error(path, f"missing tensor {name!r}")
    for name in sorted(set(tensors) - set(expected)):
        raise error(path, f"unexpected tensor {name!r}")
    for name, want in expected.items():
        want = tuple(getattr(want, "shape", want))
        if tuple(tensors[name].shape) != want:
            raise error(path, f"tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {want}")

def load_module_state(module: torch.nn.Module, path: str | Path, error=LoadError) -> None:
    """Load a safetensors state dict into ``module`` (strict: every tensor present, of the module's shape)."""
    module.load_state_dict(read_safetensors(path, module.state_dict(), error))


def save_tensors(tensors: dict, path: str | Path) -> None:
    """Write {name: tensor} as safetensors (moved to CPU, contiguous), atomically: a folder whose weights file
    exists holds the whole file."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    # A write killed earlier left its temporary file, which the folder check would refuse as unexpected.
    clean_stale_temp_files(Path(path).parent, [Path(path).name])
    write_atomic(path, lambda tmp: save_file(cpu, str(tmp)))
