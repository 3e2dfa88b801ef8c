"""The main job: videos -> extract -> label -> pretext pretraining -> fine-tuning (pretrained vs scratch) -> report.

    python -m avpretext.main_job [--out runs/main] [--videos DIR_OR_CSV] [--labels MANIFEST_CSV] [--workers 2]

Without ``--videos``/``--labels`` it runs on an embedded default that the toolkit builds itself,
deterministically and with nothing downloaded: six talking-face videos animated from scikit-image's astronaut
photograph (mediapipe really detects the face; expressions, jaw and head move with the voiced audio) and a
small labelled speech-emotion set whose classes differ in prosody. With them, the same stages run on the
user's videos and labelled manifest (any CSV with path, label and speaker columns, or a
``finetune.prepare`` manifest). Every stage is a library call; each is resumable, so a rerun continues.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from avpretext import synthetic
from avpretext.common.cli import CommandParser, command_name
from avpretext.pipeline.report import build_report
from data_prep.executors import ProcessExecutor
from data_prep.extract import ExtractOptions, extract_corpus
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from finetune.experiment import base_config, run_grid
from finetune.recipes import MANIFEST_COLUMNS, load_manifest, prepare_csv, write_manifest
from pretext.config import RUN_CONFIG_FILE
from pretext.tasks import DEFAULT_TASKS
from pretext.train import TrainConfig, train

# A small member of the default encoder family (cnn: log-mel VGG), sized for a demo on two CPU cores.
DEMO_ENCODER = {"channels": [16, 32, 64], "dim": 64, "n_mels": 64}


@dataclass
class MainJobConfig:
    out: str = "runs/main"
    videos: str = ""  # folder or CSV of videos; empty: the embedded sample corpus
    labels: str = ""  # labelled speech manifest CSV; empty: the embedded labelled set
    workers: int = 2
    sample_videos: int = 6  # size of the embedded sample corpus (about 22 s each)
    sample_stretches: int = 4  # speech stretches per sample video (5.5 s each with the pause after it)
    sample_speakers: int = 6  # speakers of the embedded labelled set (32 utterances each)
    fps: float = 10.0  # analysed frames per second (the face model is the cost)
    encoder: str = "cnn"
    encoder_options: dict = field(default_factory=lambda: dict(DEMO_ENCODER))
    pretrain_steps: int = 100
    fractions: tuple[float, ...] = (0.25, 1.0)
    seeds: tuple[int, ...] = (0,)
    num_folds: int = 3
    finetune_settings: tuple[str, ...] = ("epochs=8", "patience=4", "lr=0.002", "encoder_lr_mult=1.0",
                                          "max_seconds=3.0", "batch_size=16", "dev_speakers=1", "num_workers=0")


class Stages:
    """Runs the numbered stages, printing progress and recording each one's wall time."""

    def __init__(self, total: int):
        self.total, self.done, self.timings = total, 0, {}

    def run(self, name: str, function, *args, **kwargs):
        self.done += 1
        print(f"== [{self.done}/{self.total}] {name}", flush=True)
        started = time.perf_counter()
        result = function(*args, **kwargs)
        self.timings[name] = time.perf_counter() - started
        print(f"   {name}: {self.timings[name]:.0f} s", flush=True)
        return result


def load_labelled(path: str):
    """A labelled manifest: a finetune.prepare manifest, or a generic CSV (path, label, speaker, [gender,
    split, fold])."""
    header = list(pd.read_csv(path, nrows=0).columns)
    if set(MANIFEST_COLUMNS) <= set(header):
        return load_manifest(path)
    optional = {f"{c}_column": c for c in ("gender", "split", "fold") if c in header}
    return prepare_csv(path, **optional)


def run_main_job(config: MainJobConfig) -> Path:
    """Run every stage into ``config.out``; returns the report's path."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(7)
    videos = config.videos or str(out / "sample_corpus")
    stages.run("sample corpus" if not config.videos else "videos (given)",
               lambda: config.videos or synthetic.write_sample_corpus(videos, config.sample_videos,
                                                                      config.sample_stretches))
    summary = stages.run("data_prep extract", extract_corpus, videos, out / "extract",
                         ExtractOptions(max_fps=config.fps), executor=ProcessExecutor(config.workers))
    print(f"   {summary}")
    result = stages.run("data_prep label", label_corpus, out / "extract", build_label_config())
    for warning in result.stats.get("warnings", []):
        print(f"   warning: {warning}")

    pretrain = out / "pretrain"
    if not (pretrain / "encoder" / "model.safetensors").exists():
        tasks = ",".join(DEFAULT_TASKS)
        stages.run(f"pretext/train.py --tasks {tasks}", train, TrainConfig(
            data=str(out / "extract"), tasks=tasks, encoder=config.encoder,
            encoder_options=config.encoder_options, out=str(pretrain), max_steps=config.pretrain_steps,
            batch_size=8, lr=2e-3, warmup_steps=10, max_seconds=3.0, eval_every=25, log_every=5,
            checkpoint_every=config.pretrain_steps, num_workers=2, report_to="none",
            resume=(pretrain / RUN_CONFIG_FILE).exists()))
    else:
        stages.run("pretext/train.py (already done)", lambda: None)

    def labelled_set() -> Path:
        if not config.labels:
            return synthetic.write_labeled_speech(out / "labelled_speech", speakers=config.sample_speakers)
        return write_manifest(load_labelled(config.labels), out / "labelled_manifest.csv")

    manifest = stages.run("labelled set", labelled_set)
    base = base_config(str(manifest), [*config.finetune_settings, f"num_folds={config.num_folds}"])
    experiment = out / "finetune"
    stages.run("finetune/experiment.py (pretrained vs scratch)", run_grid, base, str(pretrain / "encoder"),
               experiment, ["finetune", "probe", "lrprobe", "egemaps"], list(config.fractions), list(config.seeds))
    notes = [f"Videos: `{videos}`; labelled speech: `{manifest}`.",
             "Built-in sample data is synthetic: the numbers show the pipeline works, not what pretraining is "
             "worth on real speech (see docs/results.md)." if not (config.videos or config.labels) else ""]
    report = stages.run("report", build_report, out / "extract", pretrain, experiment, out / "report",
                        "avpretext main job", dict(stages.timings), [n for n in notes if n])
    print(f"report: {report}")
    return report


def main(argv=None) -> int:
    parser = CommandParser(prog=command_name("avpretext.main_job", "avpretext-main"),
                           description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=MainJobConfig.out, help="output folder of every stage and the report")
    parser.add_argument("--videos", default="", help="folder or CSV manifest of videos (default: sample corpus)")
    parser.add_argument("--labels", default="", help="labelled speech manifest CSV (default: sample set)")
    parser.add_argument("--workers", type=int, default=MainJobConfig.workers, help="extraction worker processes")
    parser.add_argument("--fps", type=float, default=MainJobConfig.fps, help="analysed video frames per second (max)")
    parser.add_argument("--pretrain-steps", type=int, default=MainJobConfig.pretrain_steps,
                        help="pretext pretraining optimizer steps")
    args = parser.parse_args(argv)
    run_main_job(MainJobConfig(out=args.out, videos=args.videos, labels=args.labels, workers=args.workers,
                               fps=args.fps, pretrain_steps=args.pretrain_steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
