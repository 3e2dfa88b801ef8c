"""Training-step throughput of pretext/train.py against a bare PyTorch loop, data-wait share, peak memory.

Run:  .venv/bin/python -m benchmarks.train_throughput [--steps 30] [--batch-size 8] [--shared ../shared]

For each encoder (default configs), in a fresh process each (so peak memory is that encoder's):
* samples/s of ``pretext.train.train_step`` (Accelerate-prepared model and optimizer, its scheduler, masked
  multi-task losses) and of a bare loop (plain model, summed losses, backward, step) on the same in-memory
  batches, alternating the two every step so machine noise hits both alike; target ratio >= 0.95;
* the share of step time spent waiting for data in a real ``train()`` run with 2 loader workers (from
  ``metrics.jsonl``'s ``data_wait_s``); target < 5%;
* peak RSS of the process.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from accelerate import Accelerator

from avpretext import synthetic
from avpretext.common.batches import SegmentDataset, collate
from avpretext.common.cli import CommandParser
from avpretext.common.schedules import build_scheduler
from data_prep.extract import ExtractOptions, extract_corpus
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.segments import LABEL_CONFIG_FILE, load_segments
from encoders import build_encoder
from pretext.tasks import parse_tasks
from pretext.train import PretextModel, TrainConfig, load_task_table, train, train_step

REPO = Path(__file__).resolve().parents[1]


def build_segments(work: Path, shared: Path, repeat: int) -> Path:
    """The sample corpus's segment table, its rows repeated ``repeat`` times.

    The sample corpus has 24 segments, i.e. 3 batches of 8 per epoch. A loader cannot prefetch across an
    epoch boundary, so with 3 batches per epoch every third step waits for a whole batch: that measures
    the toy corpus, not the loader. Repeating rows gives an epoch the length of a small real corpus.
    """
    out = work / "extract"
    if not (out / "segments.parquet").exists():
        corpus = synthetic.write_sample_corpus(work / "corpus")
        extract_corpus(corpus, out, ExtractOptions(face_model=str(shared / "models/face_landmarker.task"), max_fps=5),
                       progress=False)
        label_corpus(out, build_label_config(), progress=False)
    repeated = work / f"segments_x{repeat}"
    repeated.mkdir(exist_ok=True)
    table = load_segments(out)  # audio paths made absolute: the copy lives in another folder
    pd.concat([table] * repeat, ignore_index=True).to_parquet(repeated / "segments.parquet")
    shutil.copy(out / LABEL_CONFIG_FILE, repeated / LABEL_CONFIG_FILE)
    return repeated


def measure(encoder_name: str, segments: Path, work: Path, steps: int, batch_size: int) -> dict:
    torch.manual_seed(0)
    tasks = parse_tasks("energy,face,au")
    table, configs = load_task_table(str(segments), tasks)
    dataset = SegmentDataset(table, [t.name for t in tasks], max_seconds=4.0, random_crop=False)
    batches = [collate([dataset[(i * batch_size + j) % len(dataset)] for j in range(batch_size)]) for i in range(4)]

    def make():
        encoder = build_encoder(encoder_name)
        heads = {t.name: t.build_head(encoder.output_dim, configs[t.name]) for t in tasks}
        model = PretextModel(encoder, heads)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        return model, optimizer, build_scheduler(optimizer, 10, 10_000)

    accelerator = Accelerator()
    model_a, opt_a, sched_a = make()
    model_a, opt_a = accelerator.prepare(model_a, opt_a)  # the scheduler as pretext/train.py: not prepared
    model_b, opt_b, _ = make()
    weights = {t.name: 1.0 for t in tasks}

    def bare_step(batch):
        logits = model_b(batch["wavs"], batch["lengths"])
        loss = sum(t.loss(logits[t.name], batch["labels"][t.name], batch["masks"][t.name]) for t in tasks)
        loss.backward()
        opt_b.step()
        opt_b.zero_grad()

    for batch in batches[:2]:  # warm-up
        train_step(accelerator, model_a, opt_a, sched_a, batch, tasks, weights)
        bare_step(batch)
    ours = bare = 0.0
    for i in range(steps):
        batch = batches[i % len(batches)]
        t0 = time.perf_counter()
        train_step(accelerator, model_a, opt_a, sched_a, batch, tasks, weights)
        t1 = time.perf_counter()
        bare_step(batch)
        t2 = time.perf_counter()
        ours += t1 - t0
        bare += t2 - t1
    samples = steps * batch_size

    run = work / f"run_{encoder_name}"
    shutil.rmtree(run, ignore_errors=True)
    train(TrainConfig(data=str(segments), encoder=encoder_name, out=str(run), max_steps=steps, batch_size=batch_size,
                      num_workers=2, log_every=5, eval_every=10 ** 9, checkpoint_every=10 ** 9,
                      max_seconds=4.0, val_fraction=0.0))
    records = [json.loads(line) for line in open(run / "metrics.jsonl")]
    # The first interval includes starting the loader workers (a fresh interpreter importing torch each);
    # the steady state is what the rest of a long run sees.
    steady_wait = sum(r["data_wait_s"] for r in records[1:])
    steady_time = records[-1]["elapsed_s"] - records[0]["elapsed_s"]
    return {"encoder": encoder_name, "train_step_samples_s": samples / ours, "bare_samples_s": samples / bare,
            "ratio": bare / ours,
            "data_wait_share": sum(r["data_wait_s"] for r in records) / records[-1]["elapsed_s"],
            "steady_data_wait_share": steady_wait / steady_time,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--repeat", type=int, default=10, help="repeat the 24 sample segments (epoch length)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/avpretext_train_bench"))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one encoder, print JSON
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    segments = build_segments(args.work, args.shared, args.repeat)
    if args.one:
        print(json.dumps(measure(args.one, segments, args.work, args.steps, args.batch_size)))
        return
    print(f"{'encoder':12s}{'train.py step':>15s}{'bare loop':>12s}{'ratio':>8s}{'data wait':>11s}"
          f"{'after start':>13s}{'peak RSS':>10s}")
    for name in ("cnn", "crnn", "transformer"):
        result = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(args.steps), "--batch-size",
                                 str(args.batch_size), "--work", str(args.work), "--shared", str(args.shared),
                                 "--repeat", str(args.repeat)],
                                capture_output=True, text=True, check=True)
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{name:12s}{r['train_step_samples_s']:13.1f}/s{r['bare_samples_s']:10.1f}/s{r['ratio']:8.3f}"
              f"{r['data_wait_share']:10.1%}{r['steady_data_wait_share']:12.1%}{r['peak_rss_mb']:9.0f} MB")
    print("data wait: whole run / after the first 5 steps (worker start-up excluded)")
    print("targets: ratio >= 0.95, data wait < 5% (2 loader workers); batch "
          f"{args.batch_size} x 4 s segments, {args.steps} steps, "
          f"{24 * args.repeat} segments per epoch, 2 CPU cores")


if __name__ == "__main__":
    main()
