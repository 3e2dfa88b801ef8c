"""The interface every executor implements, and the per-item error capture they share.

A job is two picklable functions (module-level, or closures for Ray, which pickles them by value):
``init_fn() -> state`` builds a worker's heavy state once (e.g. the face model), and
``process_fn(state, item) -> dict`` handles one item (anything with an ``id``), writes its own outputs
atomically and returns a small summary. A failure is caught per item, recorded with its reason as a failed
:class:`ItemResult`, and never stops the batch.
"""
from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator

InitFn = Callable[[], Any]
ProcessFn = Callable[[Any, Any], dict]


@dataclass
class ItemResult:
    item_id: str
    ok: bool
    summary: dict = field(default_factory=dict)
    error: str = ""


class ExecutorUnavailable(RuntimeError):
    """The executor's optional dependency is not installed (the message says how to install it)."""


class Executor(ABC):
    """Runs a job over a batch of items on some workers; chosen by :func:`data_prep.executors.make_executor`."""

    name: ClassVar[str]  # the value of ``--executor`` that selects it

    @abstractmethod
    def map(self, items: Iterable, process_fn: ProcessFn, init_fn: InitFn) -> Iterator[ItemResult]:
        """Yield an :class:`ItemResult` per item as items finish (in any order)."""


class _InitFailed:
    def __init__(self, error: BaseException):
        self.error = error


def build_state(init_fn: InitFn) -> Any:
    """A worker's heavy state, or the start-up failure that every item it is given will report."""
    try:
        return init_fn()
    except Exception as err:  # raising here makes multiprocessing restart the worker forever
        return _InitFailed(err)


def run_with_state(process_fn: ProcessFn, state: Any, item) -> ItemResult:
    """:func:`run_one` in a worker whose start-up may have failed (then the item fails with that reason)."""
    if isinstance(state, _InitFailed):
        err = state.error
        return ItemResult(item.id, False, {"type": type(err).__name__}, f"worker start-up failed: {err}")
    return run_one(process_fn, state, item)


def run_one(process_fn: ProcessFn, state: Any, item) -> ItemResult:
    """Run one item, turning any exception into a failed :class:`ItemResult` with a readable reason."""
    try:
        return ItemResult(item.id, True, process_fn(state, item))
    except Exception as err:  # one bad item must never stop the batch
        reason = str(err) or type(err).__name__
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        return ItemResult(item.id, False, {"traceback": traceback.format_exc(limit=3), "type": type(err).__name__},
                          reason if reason in detail else detail)
