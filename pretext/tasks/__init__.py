"""Pretext tasks: one module each, registered here by name.

A user-defined task is referred to as ``package.module:ClassName`` wherever a task name is accepted.
"""
from __future__ import annotations

import importlib

from .au import AUTask
from .base import PretextTask
from .cluster import ClusterTask
from .energy import EnergyTask
from .face import FaceTask

# "cluster" (audio-only k-means pseudo-classes) is registered but not in the default task list, which
# follows Goncalves and Busso (energy, face, au).
TASKS: dict[str, type[PretextTask]] = {"energy": EnergyTask, "face": FaceTask, "au": AUTask,
                                       "cluster": ClusterTask}


def get_task(name: str) -> PretextTask:
    """An instance of the task registered as ``name``, or of ``module:Class`` for a plug-in task.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or a class that is not a PretextTask.
    """
    if name in TASKS:
        return TASKS[name]()
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot load pretext task {name!r}: {err}") from err
        if not (isinstance(cls, type) and issubclass(cls, PretextTask)) or not cls.name:
            raise ValueError(f"{name!r} is not a PretextTask subclass with a name")
        return cls()
    raise ValueError(f"unknown pretext task {name!r}; choose from {sorted(TASKS)} or give module:Class")


def parse_tasks(spec: str) -> list[PretextTask]:
    """``"energy,face,au"`` -> task instances, in order, without duplicates."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"task listed twice in {spec!r}")
    return [get_task(n) for n in names]
