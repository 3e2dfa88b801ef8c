"""One resumable, parallel, sharded batch runner for per-item jobs.

Each worker process builds its heavy state once (``init_fn``), then handles items one at a time with
``process_fn(state, item) -> dict``. The process function writes its own outputs atomically and returns a
small summary; a failure is caught per item, recorded with its reason, and never stops the batch.
The serial path (``workers=1``) runs the same functions in-process.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

_STATE: Any = None


@dataclass
class ItemResult:
    item_id: str
    ok: bool
    summary: dict = field(default_factory=dict)
    error: str = ""


class _InitFailed:
    def __init__(self, error: BaseException):
        self.error = error


def _worker_init(init_fn: Callable[[], Any]) -> None:
    global _STATE
    _STATE = build_state(init_fn)


def build_state(init_fn: Callable[[], Any]) -> Any:
    """A worker's heavy state, or the start-up failure that every item it is given will report."""
    try:
        return init_fn()
    except Exception as err:  # raising here makes multiprocessing restart the worker forever
        return _InitFailed(err)


def run_with_state(process_fn: Callable[[Any, Any], dict], state: Any, item) -> ItemResult:
    """:func:`run_one` in a worker whose start-up may have failed (then the item fails with that reason)."""
    if isinstance(state, _InitFailed):
        err = state.error
        return ItemResult(item.id, False, {"type": type(err).__name__}, f"worker start-up failed: {err}")
    return run_one(process_fn, state, item)


def _worker_run(args) -> ItemResult:
    process_fn, item = args
    return run_with_state(process_fn, _STATE, item)


def run_one(process_fn: Callable[[Any, Any], dict], state: Any, item) -> ItemResult:
    """Run one item, turning any exception into a failed :class:`ItemResult` with a readable reason."""
    try:
        return ItemResult(item.id, True, process_fn(state, item))
    except Exception as err:  # one bad item must never stop the batch
        reason = str(err) or type(err).__name__
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        return ItemResult(item.id, False, {"traceback": traceback.format_exc(limit=3), "type": type(err).__name__},
                          reason if reason in detail else detail)


EXECUTORS = ("processes", "ray")


def run_items(items: Iterable, process_fn: Callable[[Any, Any], dict], init_fn: Callable[[], Any],
              workers: int | None = 1, executor: str = "processes", ray_address: str | None = None
              ) -> Iterator[ItemResult]:
    """Yield an :class:`ItemResult` per item as items finish (any order when ``workers > 1``).

    ``executor="processes"``: ``workers`` processes on this machine (None: 1), started with ``spawn`` (safe
    with threads inside mediapipe/torch and the same on every OS); ``process_fn`` and ``init_fn`` must be
    module-level functions. ``executor="ray"``: :func:`data_prep.ray_runner.run_items_ray` over the cluster at
    ``ray_address`` (None: a local one), ``workers`` actors (None: one per CPU of the cluster).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        from .ray_runner import run_items_ray

        yield from run_items_ray(items, process_fn, init_fn, workers=workers, address=ray_address)
        return
    workers = workers or 1
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        state = init_fn()
        for item in items:
            yield run_one(process_fn, state, item)
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes=min(workers, len(items)), initializer=_worker_init, initargs=(init_fn,),
                  maxtasksperchild=None) as pool:
        yield from pool.imap_unordered(_worker_run, [(process_fn, it) for it in items], chunksize=1)


def distributed_shard() -> tuple[int, int]:
    """(rank, world size) when launched by ``accelerate launch``/``torchrun`` (from their environment), else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world
