"""Pretext tasks: one module each, registered here by name.

A user-defined task is referred to as ``package.module:ClassName`` (or ``path/to/file.py:ClassName``) wherever a
task name is accepted; :mod:`pretext.tasks.plugin` resolves it.
"""
from __future__ import annotations

from .acoustic import AcousticTask
from .au import AUTask
from .base import PretextTask, check_task_class
from .cluster import ClusterTask
from .energy import EnergyTask
from .face import FaceTask
from .plugin import load_plugin_class

TASKS: dict[str, type[PretextTask]] = {}
# The tasks of Goncalves and Busso, used wherever no task list is given (labelling, pretraining, the main job).
# "cluster" (audio-only k-means pseudo-classes) and "acoustic" (eGeMAPS descriptors regressed per frame) are
# registered but not defaults.
DEFAULT_TASKS: tuple[str, ...] = ("energy", "face", "au")


def register_task(cls: type[PretextTask]) -> type[PretextTask]:
    """Add a task class to the registry under ``cls.name``, after checking the task contract.

    Usable as a class decorator. Raises ValueError when the class breaks the contract or the name is taken.
    """
    check_task_class(cls)
    if cls.name in TASKS and TASKS[cls.name] is not cls:
        raise ValueError(f"pretext task name {cls.name!r} is already registered ({TASKS[cls.name].__qualname__})")
    TASKS[cls.name] = cls
    return cls


for _builtin in (EnergyTask, FaceTask, AUTask, ClusterTask, AcousticTask):
    register_task(_builtin)


def get_task(name: str) -> PretextTask:
    """An instance of the task registered as ``name``, or of ``module:Class`` for a plug-in task.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or a class that breaks the task contract
            (:func:`pretext.tasks.base.check_task_class`).
    """
    if name in TASKS:
        return TASKS[name]()
    if ":" in name:  # a plug-in: resolved alike under every entry point (pretext.tasks.plugin)
        return check_task_class(load_plugin_class(name), name)()
    raise ValueError(f"unknown pretext task {name!r}; choose from {sorted(TASKS)} or give module:Class "
                     "(or path/to/file.py:Class)")


def parse_tasks(spec: str) -> list[PretextTask]:
    """``"energy,face,au"`` -> task instances, in order, without duplicates."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"task listed twice in {spec!r}")
    return [get_task(n) for n in names]
