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
    try:
        _STATE = init_fn()
    except Exception as err:  # raising here makes multiprocessing restart the worker forever
        _STATE = _InitFailed(err)


def _worker_run(args) -> ItemResult:
    process_fn, item = args
    if isinstance(_STATE, _InitFailed):
        err = _STATE.error
        return ItemResult(item.id, False, {"type": type(err).__name__}, f"worker start-up failed: {err}")
    return run_one(process_fn, _STATE, item)


def run_one(process_fn: Callable[[Any, Any], dict], state: Any, item) -> ItemResult:
    """Run one item, turning any exception into a failed :class:`ItemResult` with a readable reason."""
    try:
        return ItemResult(item.id, True, process_fn(state, item))
    except Exception as err:  # one bad item must never stop the batch
        reason = str(err) or type(err).__name__
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        return ItemResult(item.id, False, {"traceback": traceback.format_exc(limit=3), "type": type(err).__name__},
                          reason if reason in detail else detail)


def run_items(items: Iterable, process_fn: Callable[[Any, Any], dict], init_fn: Callable[[], Any],
              workers: int = 1) -> Iterator[ItemResult]:
    """Yield an :class:`ItemResult` per item as items finish (any order when ``workers > 1``).

    Workers are started with ``spawn`` (safe with threads inside mediapipe/torch and the same on every OS);
    ``process_fn`` and ``init_fn`` must be module-level functions.
    """
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
