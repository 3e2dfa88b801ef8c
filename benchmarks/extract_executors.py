"""Extraction throughput of the Ray executor against the process pool, on the same real clips, in one run.

Run:  .venv/bin/python -m benchmarks.extract_executors [--shared ../shared] [--work /tmp/avpretext_bench_ray]

Prints media seconds per wall second of ``extract_corpus`` with ``--workers 2`` (process pool) and with
``--executor ray --workers 2`` (a local Ray cluster started for the run, as ``data_prep extract`` does without
``--ray-address``), their ratio, and the cost of starting and stopping the local cluster alone, which a long
corpus amortises. The clips are the real talking-face clips with audio, repeated to at least 5 minutes
(``benchmarks.label_throughput.build_corpus``); both executors extract identical outputs (tested in
tests/data_prep/test_ray_executor.py). Ray runs its workers at niceness 15: on a machine busy with other work
they yield to it, so run this benchmark on an otherwise idle machine.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from avpretext.common.cli import CommandParser
from benchmarks.label_throughput import build_corpus
from data_prep.executors import Executor, ProcessExecutor, RayExecutor
from data_prep.extract import ExtractOptions, extract_corpus

REPO = Path(__file__).resolve().parents[1]


def timed_extract(corpus: Path, out: Path, executor: Executor) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = extract_corpus(corpus, out, ExtractOptions(max_fps=10), executor=executor, progress=False)
    assert not summary.failed, summary.failed
    return time.perf_counter() - started, summary.done


def cluster_overhead() -> float:
    """Seconds to start a 2-CPU local Ray cluster, run one task, and stop it."""
    import ray  # the optional extra; RayExecutor has already said how to install it when it is missing

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.get(ray.remote(lambda: 1).remote())
    ray.shutdown()
    return time.perf_counter() - started


def main() -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--work", type=Path, default=Path("/tmp/avpretext_bench_ray"))
    args = parser.parse_args()
    pool = ProcessExecutor(workers=2)
    executors = [pool, RayExecutor(workers=2)]  # made first: without Ray, stop before the corpus is built
    corpus, media_s = build_corpus(args.shared, args.work)
    rows = {executor.name: timed_extract(corpus, args.work / executor.name, executor) for executor in executors}
    overhead = cluster_overhead()
    print(f"{rows[pool.name][1]} real clips, {media_s:.0f} s of media, face model at 10 fps, 2 CPU cores")
    base = media_s / rows[pool.name][0]
    for name, (wall, _) in rows.items():
        speed = media_s / wall
        label = f"{name}, --workers 2"
        print(f"  {label:24s} wall {wall:7.1f} s   {speed:6.2f} media-s/s   {speed / base:5.2f}x the pool")
    print(f"  local Ray cluster start + stop alone: {overhead:.1f} s (in the ray row's wall)")


if __name__ == "__main__":
    main()
