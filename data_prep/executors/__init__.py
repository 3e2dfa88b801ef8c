"""Executors: what runs a per-item job over a batch of items, each one an :class:`Executor`.

:class:`ProcessExecutor` (processes on this machine) and :class:`RayExecutor` (a Ray cluster) give the same
results; the code that runs items (``extract_corpus``) takes one as an object, and a command line chooses one
by name with :func:`make_executor`, the one place that maps names to executors (``--executor`` offers the
keys of :data:`EXECUTORS`). The job's contract and the per-item error capture are in :mod:`.base`.
"""
from __future__ import annotations

from .base import Executor, ExecutorUnavailable, ItemResult
from .processes import ProcessExecutor
from .ray_cluster import RayExecutor

__all__ = ["EXECUTORS", "Executor", "ExecutorUnavailable", "ItemResult", "ProcessExecutor", "RayExecutor",
           "make_executor"]

EXECUTORS: dict[str, type[Executor]] = {cls.name: cls for cls in (ProcessExecutor, RayExecutor)}


def make_executor(name: str, workers: int | None = None, ray_address: str | None = None) -> Executor:
    """The executor called ``name`` (a key of :data:`EXECUTORS`) with ``workers`` workers (None: its default).

    Raises:
        ValueError: an unknown name, or ``ray_address`` for an executor other than Ray.
        ExecutorUnavailable: the executor's optional dependency is not installed.
    """
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")
    if EXECUTORS[name] is RayExecutor:
        return RayExecutor(workers, address=ray_address)
    if ray_address is not None:
        raise ValueError(f"--ray-address {ray_address}: needs --executor {RayExecutor.name}")
    return EXECUTORS[name](workers)
