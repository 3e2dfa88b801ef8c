"""The Ray executor: items spread over a Ray cluster, balanced as workers free up.

One long-lived actor per slot (one CPU, or one GPU with ``gpus_per_worker``) builds the heavy state once
(``init_fn``: the face model) and handles one item at a time; the driver hands the next item to whichever actor
finishes first, so a slow machine takes fewer items and a dead one leaves none undone. An actor that dies (its
process killed, out of memory, its machine lost) is replaced and its item handed out again, up to
``max_attempts`` times; then the item is recorded as failed with the reason, like any other failure. Items are
written by ``process_fn`` itself, atomically, on storage every machine sees (the output folder), so the driver
only collects small summaries: results, resumability and ``--retry-failed`` are those of the process pool.

Ray is an optional extra (``pip install 'avpretext[ray]'``), so it is imported only when this executor is made
or run, never at the top of a module: the process pool and the CLI work without it. The module is not named
``ray`` so that it cannot be mistaken for the package.
"""
from __future__ import annotations

import sys
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from .base import Executor, ExecutorUnavailable, InitFn, ItemResult, ProcessFn, build_state, run_with_state

INSTALL_HINT = "pip install 'avpretext[ray]'"
MAX_ATTEMPTS = 3  # an item whose worker died this many times is recorded as failed, not retried forever


def import_ray():
    try:
        import ray  # the optional extra: imported here only, so that the pool and the CLI work without it
    except ImportError as err:
        raise ExecutorUnavailable(f"--executor ray needs Ray, which is not installed ({err}); {INSTALL_HINT}"
                                  ) from None
    return ray


class ItemWorker:
    """The actor: the state built once, then items one at a time (run as ``ray.remote(ItemWorker)``)."""

    def __init__(self, init_fn: InitFn):
        self.state = build_state(init_fn)

    def run(self, process_fn: ProcessFn, item) -> ItemResult:
        return run_with_state(process_fn, self.state, item)


class RayExecutor(Executor):
    """Items over a Ray cluster, a dead worker's item handed out again.

    Args:
        workers: actors to start (None: one per CPU, or per GPU, of the cluster).
        address: ``auto`` or ``HOST:PORT`` of a running cluster (``ray start --head``); None starts a local one
            on this machine for each run (with ``workers`` CPUs when given) and stops it afterwards.
        gpus_per_worker: GPUs reserved per actor (0: CPU actors).
        max_attempts: how often an item is handed out when its worker dies under it.
        log: where the driver reports a worker's death (default: stderr).

    Raises:
        ExecutorUnavailable: Ray is not installed (checked here, before a run writes anything).
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, gpus_per_worker: float = 0.0,
                 max_attempts: int = MAX_ATTEMPTS, log: Callable[[str], None] | None = None):
        import_ray()
        self.workers = workers
        self.address = address
        self.gpus_per_worker = gpus_per_worker
        self.max_attempts = max_attempts
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))

    def map(self, items: Iterable, process_fn: ProcessFn, init_fn: InitFn) -> Iterator[ItemResult]:
        ray = import_ray()
        items = list(items)
        if not items:
            return
        started_here = not ray.is_initialized()
        if started_here:
            local = {} if self.address else {"num_cpus": self.workers} if self.workers else {}
            # The driver's modules are importable on the workers (an editable install or the same tree on each
            # machine); the dashboard is not needed for a batch job and is the slowest part of starting a cluster.
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **local)
        try:
            yield from self._run(ray, items, process_fn, init_fn)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray, items: list, process_fn: ProcessFn, init_fn: InitFn) -> Iterator[ItemResult]:
        slots = self.workers or _cluster_slots(ray, self.gpus_per_worker)
        actor_class = ray.remote(num_cpus=0 if self.gpus_per_worker else 1, num_gpus=self.gpus_per_worker,
                                 max_restarts=0)(ItemWorker)  # the driver replaces dead actors itself
        init_ref, process_ref = ray.put(init_fn), ray.put(process_fn)
        queue = deque((item, 1) for item in items)
        running: dict = {}  # result ref -> (actor, item, attempt)

        def hand_out(actor) -> None:
            item, attempt = queue.popleft()
            running[actor.run.remote(process_ref, item)] = (actor, item, attempt)

        for _ in range(min(slots, len(items))):
            hand_out(actor_class.remote(init_ref))
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, item, attempt = running.pop(ref)
            try:
                result = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as err:
                reason = _first_line(err)
                if attempt < self.max_attempts:
                    self.log(f"worker died while handling {item.id} (attempt {attempt}/{self.max_attempts}: "
                             f"{reason}); handing it out again")
                    queue.appendleft((item, attempt + 1))
                else:
                    yield ItemResult(item.id, False, {"type": "WorkerDied", "attempts": attempt},
                                     f"its worker died {attempt} times while handling it (last: {reason})")
                actor = actor_class.remote(init_ref)  # a replacement takes the dead one's slot
            else:
                yield result
            if queue:
                hand_out(actor)
            else:
                ray.kill(actor)


def _cluster_slots(ray, gpus_per_worker: float) -> int:
    resources = ray.cluster_resources()
    if gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)))


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return f"{type(err).__name__}: {text.splitlines()[0]}"
