"""What a result depends on besides its config: the library versions and the machine that produced it.

Training repeats bit for bit on one machine and install, not across them (docs/results.md: the same fine-tuning
cells re-run on another machine moved by up to 6 UAR points), so every run and grid cell records where it ran,
one JSON line per start (a run resumed elsewhere shows both), in ``environment.jsonl`` beside its config.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import time
from pathlib import Path

from .io import write_bytes_atomic

ENVIRONMENT_FILE = "environment.jsonl"
PACKAGES = ("torch", "torchaudio", "numpy", "accelerate", "scikit-learn", "mediapipe", "av")


def environment_info() -> dict:
    """Versions of Python and the numeric packages, the CPU, its thread settings and any accelerator."""
    import torch  # heavy: the common layer loads it only where used

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    versions["torch"] = torch.__version__  # with its build tag (+cpu, +cu130): the kernels differ
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": socket.gethostname(),
            "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())], **versions}


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; elsewhere what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def record_environment(folder: str | Path) -> Path:
    """Append this process's :func:`environment_info` as one JSON line to ``folder/environment.jsonl``
    (rewritten atomically: earlier lines are kept whole)."""
    path = Path(folder) / ENVIRONMENT_FILE
    earlier = path.read_bytes() if path.exists() else b""
    write_bytes_atomic(path, earlier + (json.dumps(environment_info()) + "\n").encode("utf-8"))
    return path
