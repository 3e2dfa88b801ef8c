"""The real-speech experiment of docs/results.md: pretext pretraining, then RAVDESS fine-tuning, per fold.

    .venv/bin/python -m experiments.ravdess_results --work /work/runs/results [--shared ../shared]
        [--folds 4] [--pretrain-steps 400] [--probe-seeds 0,1,2] [--finetune-seeds 0,1,2]
        [--fractions 0.1,0.25,0.5,1]

Steps (each resumable; the time of each is written to WORK/timings.json):

1. ``prepare``: the RAVDESS manifest from its file names (finetune.recipes.prepare_ravdess).
2. ``extract``: RAVDESS audio (energy only: no video) and the real talking-face clips (audio + face model).
3. ``label``: RAVDESS as whole-clip segments (its clips hold 1.5-3 s of speech, shorter than the default
   3 s windows); the talking faces with the default windows; energy, face and AU tasks on both (RAVDESS rows
   have no face, so their face/AU labels are masked).
4. ``pretrain``: one pretext run per speaker fold on the talking faces plus the RAVDESS audio of every
   actor *except that fold's test actors*; the emotion labels are never read.
5. ``probe`` and ``finetune``: ``finetune/experiment.py``'s grid with ``--pretrained WORK/pretrain/{fold}``.
6. ``report``: WORK/results.md (every finished experiment's tables, step times) and WORK/results.png.
7. ``archive`` (not by default): every finished cell, the encoders' digests, the step times and the report into
   ``--archive`` (docs/results/ravdess), so the results outlive WORK; ``restore`` (after ``pretrain``) puts
   them back into a new WORK, so a grid can be continued on another machine.

``--variant`` runs an ablation into its own folders (``WORK/experiment_<mode>_<variant>``), reusing the main
grid's scratch cells: ``energy_audio`` pretrains on RAVDESS audio with the energy task only;
``gentle`` fine-tunes the main pretraining with a 0.1x encoder learning rate, frozen for 2 epochs, and
``slow_encoder`` with the 0.1x learning rate alone (both ``--steps finetune``: their probe is the main probe).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avpretext.common.cli import CommandParser
from avpretext.common.io import write_atomic, write_bytes_atomic, write_json_atomic
from avpretext.common.plots import pyplot, save_figure
from data_prep.executors import ProcessExecutor
from data_prep.extract import ExtractOptions, extract_corpus
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.segments import LABEL_CONFIG_FILE, SEGMENTS_FILE, load_segments
from finetune.config import RUN_CONFIG_FILE
from finetune.experiment import base_config, finished_cells, run_grid
from finetune.experiment_report import collect, write_reports
from finetune.recipes import load_manifest, prepare_ravdess, write_manifest
from finetune.splits import make_splits
from pretext.tasks import DEFAULT_TASKS
from pretext.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]

# The default encoder family (cnn: log-mel VGG) at a size two CPU cores can fine-tune 100+ times.
ENCODER_OPTIONS = {"channels": [16, 32, 64], "dim": 64, "n_mels": 64}
FINETUNE_SETTINGS = ["epochs=12", "patience=6", "lr=0.001", "encoder_lr_mult=1.0", "max_seconds=3.0",
                     "batch_size=16", "dev_speakers=2", "num_workers=2"]
PROBE_SETTINGS = ["epochs=40", "patience=10", "lr=0.003", "dev_speakers=2"]


def timed(work: Path, step: str, function, *args, **kwargs):
    """Run one step and record its wall time in WORK/timings.json."""
    path = work / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    started = time.perf_counter()
    print(f"== {step}", flush=True)
    result = function(*args, **kwargs)
    timings[step] = round(time.perf_counter() - started + timings.get(step, 0.0), 1)
    write_json_atomic(path, timings)
    print(f"== {step}: {time.perf_counter() - started:.0f} s", flush=True)
    return result


def extract_all(work: Path, shared: Path, manifest: pd.DataFrame) -> None:
    model = str(shared / "models" / "face_landmarker.task")
    audio_list = work / "ravdess_audio.csv"
    manifest[["path", "speaker"]].to_csv(audio_list, index=False)  # speakers for per-actor medians
    extract_corpus(audio_list, work / "ravdess_extract", ExtractOptions(face_model=model),
                   executor=ProcessExecutor(2), progress=False)
    faces = shared / "data" / "talking_faces" / "manifest.csv"
    extract_corpus(faces, work / "faces_extract", ExtractOptions(face_model=model, max_fps=10),
                   executor=ProcessExecutor(2), progress=False)


def label_all(work: Path) -> None:
    whole_clips = {"segmentation": {"mode": "clip", "min_s": 1.0}}
    label_corpus(work / "ravdess_extract", build_label_config(whole_clips), progress=False)
    label_corpus(work / "faces_extract", build_label_config(), progress=False)


@dataclass(frozen=True)
class Variant:
    """One pretraining + fine-tuning recipe compared with scratch.

    ``sources``: which extractions the pretraining reads ("faces": the talking faces, "ravdess": RAVDESS audio
    minus the fold's test actors); ``tasks``: the pretext tasks; ``finetune_settings``: extra fine-tuning
    settings (they only change the pretrained model: encoder_lr_mult and freeze_epochs do not apply to scratch).
    """
    sources: tuple[str, ...] = ("faces", "ravdess")
    tasks: str = ",".join(DEFAULT_TASKS)
    finetune_settings: tuple[str, ...] = ()
    pretrain: str = "pretrain"  # WORK/<pretrain>/<fold>; variants with the same pretraining share it


VARIANTS = {
    # The reference experiment: all three tasks on the talking faces plus the audio-only energy task on RAVDESS.
    "main": Variant(),
    # Ablation: what audio alone supports, without the 27 talking-face segments (are face/AU doing anything?).
    "energy_audio": Variant(sources=("ravdess",), tasks="energy", pretrain="pretrain_energy_audio"),
    # Ablation: the main pretraining, fine-tuned gently (encoder at 0.1x the learning rate, frozen 2 epochs).
    "gentle": Variant(finetune_settings=("encoder_lr_mult=0.1", "freeze_epochs=2")),
    # Ablation: gentle's slow encoder alone, without the frozen epochs (which of the two costs what).
    "slow_encoder": Variant(finetune_settings=("encoder_lr_mult=0.1",)),
}


def pretrain_fold(work: Path, variant: Variant, fold: str, test_speakers: list[str], steps: int) -> Path:
    """Pretext-pretrain on ``variant.sources`` without ``test_speakers``' audio; returns RUN."""
    run = work / variant.pretrain / fold
    if (run / "encoder" / "model.safetensors").exists():
        return run
    tables = []
    if "faces" in variant.sources:
        tables.append(load_segments(work / "faces_extract"))
    if "ravdess" in variant.sources:
        ravdess = load_segments(work / "ravdess_extract")
        tables.append(ravdess[~ravdess["speaker"].isin(test_speakers)])
    data = work / f"{variant.pretrain}_data" / fold
    data.mkdir(parents=True, exist_ok=True)
    table = pd.concat(tables, ignore_index=True)
    write_bytes_atomic(data / LABEL_CONFIG_FILE, (work / "faces_extract" / LABEL_CONFIG_FILE).read_bytes())
    write_atomic(data / SEGMENTS_FILE, lambda tmp: table.to_parquet(tmp))
    train(TrainConfig(data=str(data), tasks=variant.tasks, encoder="cnn", encoder_options=ENCODER_OPTIONS,
                      out=str(run), max_steps=steps, batch_size=16, lr=1e-3, warmup_steps=20, max_seconds=3.0,
                      eval_every=100, checkpoint_every=steps, log_every=20, num_workers=2, report_to="none",
                      resume=(run / "config.json").exists()))
    return run


def share_scratch_cells(main_experiment: Path, experiment: Path) -> None:
    """Link the main experiment's finished scratch cells: a variant's scratch twin is the same model
    (same architecture, fold, seed, subset and settings), so it is not trained twice."""
    for cell in sorted((main_experiment / "cells").glob("*-scratch-*")):
        target = experiment / "cells" / cell.name
        if (cell / "metrics.json").exists() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(cell.resolve(), target_is_directory=True)


def experiment_folder(work: Path, mode: str, variant: str) -> Path:
    """WORK/experiment_<mode> for the main variant, WORK/experiment_<mode>_<variant> for an ablation."""
    return work / (f"experiment_{mode}" + ("" if variant == "main" else f"_{variant}"))


def experiment_folders(work: Path) -> dict[tuple[str, str], Path]:
    """{(mode, variant): its experiment folder} for the experiments that have cells."""
    folders = {(mode, name): experiment_folder(work, mode, name) for mode in ("probe", "finetune") for name in VARIANTS}
    return {key: folder for key, folder in folders.items() if (folder / "cells").is_dir()}


def plot_results(work: Path, path: Path) -> Path:
    """Top: test UAR (mean +- std over cells) per label fraction, scratch and each pretraining variant.
    Bottom: the paired pretrained - scratch UAR difference with its 95% interval over matched cells.
    Reads each experiment's summary.csv and paired.csv (finetune.experiment_report.write_reports)."""
    plt = pyplot()

    folders = experiment_folders(work)
    modes = [m for m in ("probe", "finetune") if (m, "main") in folders]
    fig, axes = plt.subplots(2, len(modes), figsize=(5.5 * len(modes), 7), squeeze=False, sharex=True)
    for column, mode in enumerate(modes):
        top, bottom = axes[0][column], axes[1][column]
        for i, name in enumerate(n for n in VARIANTS if (mode, n) in folders):
            summary = pd.read_csv(folders[mode, name] / "summary.csv")
            paired = pd.read_csv(folders[mode, name] / "paired.csv")
            inits = ("scratch", "pretrained") if name == "main" else ("pretrained",)
            for init in inits:
                rows = summary[summary["init"] == init].sort_values("fraction")
                label = "scratch" if init == "scratch" else f"pretrained ({name})"
                top.errorbar(rows["fraction"] * 100 * (1 + 0.03 * i), rows["uar_mean"] * 100,
                             yerr=np.nan_to_num(rows["uar_std"]) * 100, fmt="o--" if init == "scratch" else "s-",
                             capsize=3, label=label, color="tab:gray" if init == "scratch" else f"C{i + 1}")
            paired = paired.sort_values("fraction")
            x = paired["fraction"] * 100 * (1 + 0.03 * i)
            y = paired["uar_diff"] * 100
            bottom.errorbar(x, y, yerr=[y - paired["uar_ci_low"] * 100, paired["uar_ci_high"] * 100 - y],
                            fmt="s-", capsize=3, color=f"C{i + 1}", label=name)
        bottom.axhline(0, color="black", lw=0.8)
        top.set_title(mode)
        top.set_ylabel("test UAR (%)")
        bottom.set_ylabel("pretrained - scratch (UAR points, 95% CI)")
        bottom.set_xlabel("training labels used (%)")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xticks([10, 25, 50, 100], ["10", "25", "50", "100"])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    return save_figure(fig, path)


def write_results(work: Path) -> None:
    """WORK/results.md (every experiment's tables and the step times) and WORK/results.png."""
    parts = []
    for (mode, name), folder in experiment_folders(work).items():
        cells = collect(folder, finished_cells(folder))  # whatever ran, including an interrupted grid
        write_reports(cells, folder)
        parts += [f"## {mode}, {name} ({len(cells)} cells, {folder.name})", "", (folder / "summary.md").read_text()]
    parts += ["## Step times (s)", "", "```", (work / "timings.json").read_text(), "```"]
    (work / "results.md").write_text("\n".join(parts) + "\n")
    plot_results(work, work / "results.png")
    print(f"wrote {work / 'results.md'} and {work / 'results.png'}")


def encoder_digests(work: Path) -> dict[str, str]:
    """{"<pretrain>/<fold>": sha256 of its exported weights} for every finished pretraining."""
    return {f"{path.parents[2].name}/{path.parents[1].name}": hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(work.glob("pretrain*/*/encoder/model.safetensors"))}


def archive(work: Path, folder: Path) -> None:
    """Keep the results beyond this machine: every finished cell's metrics and history (one gzipped JSON line
    per cell and experiment), the digests of the encoders they used, and the step times."""
    folder.mkdir(parents=True, exist_ok=True)
    for experiment in experiment_folders(work).values():
        lines = []
        for cell in finished_cells(experiment):
            cell_dir = experiment / "cells" / cell.name
            history = [json.loads(line) for line in (cell_dir / "history.jsonl").read_text().splitlines()]
            record = {"cell": cell.name, "metrics": json.loads((cell_dir / "metrics.json").read_text()),
                      "history": history}
            if (cell_dir / RUN_CONFIG_FILE).exists():  # what made the cell: a restored cell is checked against it
                record["config"] = json.loads((cell_dir / RUN_CONFIG_FILE).read_text())
            lines.append(json.dumps(record))
        # mtime=0: the same cells give the same bytes, so re-archiving does not churn unchanged files in git
        write_bytes_atomic(folder / f"{experiment.name}.jsonl.gz",
                           gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    write_bytes_atomic(folder / "encoders.json", (json.dumps(encoder_digests(work), indent=1) + "\n").encode())
    for name in ("timings.json", "results.md", "results.png"):  # results.*: the report step's, when it ran
        if (work / name).exists():
            write_bytes_atomic(folder / name, (work / name).read_bytes())
    print(f"archived {work} -> {folder}")


def restore(work: Path, folder: Path) -> None:
    """Put archived cells back into WORK, so that a grid continued on another machine skips them. Refused when
    this machine's pretraining did not reproduce the archived encoders bit for bit (cells would mix encoders)."""
    archived = json.loads((folder / "encoders.json").read_text())
    mismatched = [name for name, digest in encoder_digests(work).items() if archived.get(name, digest) != digest]
    if mismatched:
        raise SystemExit(f"restore: the encoders {mismatched} differ from the archived ones in {folder}")
    for path in sorted(folder.glob("experiment_*.jsonl.gz")):
        restored = 0
        for line in gzip.open(path, "rt").read().splitlines():
            record = json.loads(line)
            cell_dir = work / path.name.removesuffix(".jsonl.gz") / "cells" / record["cell"]
            if (cell_dir / "metrics.json").exists():
                continue
            cell_dir.mkdir(parents=True, exist_ok=True)
            (cell_dir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in record["history"]))
            if "config" in record:  # a record without one restores without one (the grid refuses such cells)
                write_json_atomic(cell_dir / RUN_CONFIG_FILE, record["config"])
            write_json_atomic(cell_dir / "metrics.json", record["metrics"])  # last: it marks the cell finished
            restored += 1
        print(f"restored {restored} cells from {path}")


def main() -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--pretrain-steps", type=int, default=400)
    parser.add_argument("--folds", type=int, default=4,
                        help="speaker folds over the 24 actors (4: 6 test actors per fold, 2 dev, 16 train)")
    parser.add_argument("--fractions", default="0.1,0.25,0.5,1")
    parser.add_argument("--probe-seeds", default="0,1,2")
    parser.add_argument("--finetune-seeds", default="0,1,2")
    parser.add_argument("--steps", default="prepare,extract,label,pretrain,probe,finetune,report")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="main",
                        help="main: the reference experiment; others are ablations written to WORK/*_<variant>")
    parser.add_argument("--archive", type=Path, default=REPO / "docs" / "results" / "ravdess",
                        help="where the archive step keeps, and the restore step reads, the finished cells")
    args = parser.parse_args()
    work, steps = args.work, args.steps.split(",")
    work.mkdir(parents=True, exist_ok=True)
    manifest_path = work / "ravdess.csv"
    if "prepare" in steps:
        timed(work, "prepare", lambda: write_manifest(prepare_ravdess(args.shared / "data" / "ravdess"),
                                                      manifest_path))
    manifest = load_manifest(manifest_path)
    if "extract" in steps:
        timed(work, "extract", extract_all, work, args.shared, manifest)
    if "label" in steps:
        timed(work, "label", label_all, work)
    splits = make_splits(manifest, "folds", args.folds)
    variant = VARIANTS[args.variant]
    if "pretrain" in steps:
        for split in splits:
            timed(work, f"{variant.pretrain}_{split.name}", pretrain_fold, work, variant, split.name,
                  split.test_speakers, args.pretrain_steps)
    if "restore" in steps:
        restore(work, args.archive)
    fractions = [float(x) for x in args.fractions.split(",")]
    pretrained = str(work / variant.pretrain / "{fold}")
    for mode, settings, seeds in (("probe", PROBE_SETTINGS, args.probe_seeds),
                                  ("finetune", FINETUNE_SETTINGS + list(variant.finetune_settings),
                                   args.finetune_seeds)):
        if mode in steps:
            experiment = experiment_folder(work, mode, args.variant)
            if args.variant != "main":
                share_scratch_cells(experiment_folder(work, mode, "main"), experiment)
            base = base_config(str(manifest_path), settings + [f"num_folds={args.folds}"])
            timed(work, experiment.name.removeprefix("experiment_"), run_grid, base, pretrained, experiment,
                  [mode], fractions, [int(s) for s in seeds.split(",")])
    if "report" in steps:
        write_results(work)
    if "archive" in steps:
        archive(work, args.archive)

if __name__ == "__main__":
    main()
