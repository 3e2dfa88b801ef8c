"""The process-pool executor: ``workers`` processes on this machine."""
from __future__ import annotations

import multiprocessing as mp
from typing import Any, Iterable, Iterator

from .base import Executor, InitFn, ItemResult, ProcessFn, build_state, run_one, run_with_state

_STATE: Any = None  # the state of this pool worker, built once by its initializer


def _worker_init(init_fn: InitFn) -> None:
    global _STATE
    _STATE = build_state(init_fn)


def _worker_run(args) -> ItemResult:
    process_fn, item = args
    return run_with_state(process_fn, _STATE, item)


class ProcessExecutor(Executor):
    """``workers`` processes (None: 1) started with ``spawn`` (safe with the threads inside mediapipe/torch and
    the same on every OS), so ``process_fn`` and ``init_fn`` must be module-level functions (or partials of
    them). With one worker, or one item, the job runs in this process: no pool to start."""

    name = "processes"

    def __init__(self, workers: int | None = None):
        self.workers = workers or 1

    def map(self, items: Iterable, process_fn: ProcessFn, init_fn: InitFn) -> Iterator[ItemResult]:
        items = list(items)
        if self.workers <= 1 or len(items) <= 1:
            state = init_fn()
            for item in items:
                yield run_one(process_fn, state, item)
            return
        ctx = mp.get_context("spawn")
        with ctx.Pool(processes=min(self.workers, len(items)), initializer=_worker_init, initargs=(init_fn,),
                      maxtasksperchild=None) as pool:
            yield from pool.imap_unordered(_worker_run, [(process_fn, it) for it in items], chunksize=1)
