"""The scaling experiment of docs/scaling.md: does pretext pretraining pay as the pretraining data grows?

    .venv/bin/python -m experiments.scaling --work runs/scaling [--shared ../shared] [--encoders cnn,crnn]
        [--rungs 0.5,1,2,4,all] [--steps prepare,extract,label,pretrain,probe,finetune,baseline,report]

Steps (each resumable: rerun the same command after a kill; step times go to WORK/timings.json):

1. ``prepare``: the two labelled evaluation corpora from their own file names: RAVDESS (8 emotions, 24 actors)
   and BAVED (3 arousal levels, 60 speakers), each with speaker folds in which every speaker is tested once.
2. ``extract``: one extraction of the whole pretraining pool with ``data_prep extract`` (face model at 10 fps
   on the videos; the audio-only corpora get energy only): GRID s1 and LRW-AR (talking faces with speech), the
   real talking-face clips, and the unlabelled speech (LibriSpeech, LJSpeech, Urdu, voice samples, TESS).
   **RAVDESS and BAVED are never in the pool**, so no evaluated fold's test speakers reach any pretraining
   (and one pretraining per rung serves every fold of both corpora).
3. ``label``: one ``data_prep label`` run over the pool with every task the data supports (energy, face, au,
   cluster); face and AU labels exist only where a face was seen, so audio-only segments train energy and
   cluster only (masked, never guessed). One run, so the k-means clusters mean the same on every corpus.
4. ``pretrain``: for each rung of the ladder (hours of pool audio; nested random subsets of whole media
   items, so a small rung is inside every larger one and the corpus mix stays the same), and each encoder,
   ``pretext/train.py``; the number of steps grows with the rung (``--epochs`` passes over its segments,
   never fewer than ``--min-steps``).
5. ``probe`` / ``finetune``: ``finetune/experiment.py``'s pretrained-vs-scratch grid per corpus, encoder and
   rung: the probe at 10/25/50/100% of the labels for every rung; fine-tuning at 10% and 25% for the smallest
   and largest rungs. Scratch cells do not depend on the rung: they are trained once per corpus and encoder
   and linked into every rung's folder.
6. ``baseline``: the classic baseline on the same folds, seeds and label subsets: openSMILE eGeMAPS and ComParE
   functionals with a logistic regression (``finetune/experiment.py --modes egemaps,compare``), per corpus at
   every fraction the grids use; cheap (minutes), and independent of rungs and encoders.
7. ``report`` (tables and plot from :mod:`experiments.scaling_report`): ``docs``-ready Markdown
   (``summary.md``: the tables, and the curve's gain per doubling of the hours), ``summary.csv`` (one row per corpus, encoder, mode, fraction and rung: pretrained - scratch with 95%
   intervals over matched cells and over folds), the curve's plot, and every cell in ``cells/``; with the
   baseline, ``vs_egemaps.csv`` and a table of every pretrained and scratch row minus eGeMAPS, cell for cell.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from avpretext.common.cli import CommandParser
from avpretext.common.io import write_atomic, write_bytes_atomic, write_json_atomic
from data_prep.executors import ProcessExecutor
from data_prep.extract import ExtractOptions, extract_corpus
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.segments import LABEL_CONFIG_FILE, SEGMENTS_FILE, load_segments
from experiments.ravdess_results import share_scratch_cells, timed
from experiments.scaling_report import (SUMMARY_COLUMNS, baseline_markdown, curve_trend, plot_curve,
                                        summary_markdown, trend_markdown)
from finetune.baseline import BASELINE_MODES
from finetune.experiment import base_config, finished_cells, run_grid
from finetune.experiment_report import baseline_paired, collect, merge_unmeasured_blocks, paired_differences
from finetune.recipes import prepare_baved, prepare_ravdess, write_manifest
from pretext.config import RUN_CONFIG_FILE
from pretext.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]

# The pretraining pool: (manifest relative to ../shared/data, corpora kept from it). Evaluated corpora are absent.
POOL = (("av_pretrain/manifest.csv", ("grid", "lrw_ar")),
        ("talking_faces/manifest.csv", None),
        ("speech_unlabelled/manifest.csv", ("librispeech", "ljspeech", "urdu_read", "voice_samples", "tess")))
TASKS_BY_DATA = "energy,face,au,cluster"  # masks decide per segment which of them it trains
ENCODERS = {
    # The default family (log-mel VGG) at the size of docs/results.md, and a larger convolution + BiLSTM one.
    "cnn": {"channels": [16, 32, 64], "dim": 64, "n_mels": 64},
    "crnn": {},
}
CORPORA = ("ravdess", "baved")
FINETUNE_SETTINGS = ["epochs=20", "patience=8", "lr=0.001", "encoder_lr_mult=1.0", "max_seconds=3.0",
                     "batch_size=16", "dev_speakers=2", "num_workers=2"]
PROBE_SETTINGS = ["epochs=40", "patience=10", "lr=0.003", "dev_speakers=2"]



def prepare(work: Path, shared: Path) -> None:
    write_manifest(prepare_ravdess(shared / "data" / "ravdess"), work / "ravdess.csv")
    write_manifest(prepare_baved(shared / "data" / "speech_unlabelled" / "baved"), work / "baved.csv")


def pool_manifest(work: Path, shared: Path) -> Path:
    """One CSV (path, speaker) of every pool file, absolute paths; speaker blank where unknown."""
    rows = []
    for relative, corpora in POOL:
        manifest = shared / "data" / relative
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        if corpora is not None:
            table = table[table["corpus"].isin(corpora)]
        if "has_audio" in table:  # silent talking-face clips have no speech to pretrain on
            table = table[table["has_audio"] == "True"]
        paths = [str((manifest.parent / p).resolve()) for p in table["path"]]
        rows.append(pd.DataFrame({"path": paths, "speaker": table.get("speaker", "")}))
    path = work / "pool.csv"
    pd.concat(rows, ignore_index=True).to_csv(path, index=False)
    return path


def extract(work: Path, shared: Path, workers: int) -> None:
    extract_corpus(pool_manifest(work, shared), work / "pool_extract", ExtractOptions(max_fps=10),
                   executor=ProcessExecutor(workers), progress=False)


def label(work: Path) -> None:
    label_pool(work / "pool_extract", TASKS_BY_DATA)


def label_pool(extract_dir: Path, tasks: str, dest: Path | None = None, overrides: dict | None = None) -> None:
    """Label the extracted pool with ``tasks`` (comma-separated) into ``dest`` (default: the extract folder);
    ``overrides``: further label-config sections (e.g. ``{"au": {"mapping": "rules"}}``)."""
    # auto segmentation: pre-cut clips (GRID 3 s, LRW-AR 1.2 s, TESS 2 s) are one segment each, long
    # recordings are cut into windows; see data_prep.label.stage.segment_speech.
    config = build_label_config({"tasks": tasks.split(","), "segmentation": {"mode": "auto", "min_s": 1.0},
                                 **(overrides or {})})
    label_corpus(extract_dir, config, dest=dest, progress=False)


@dataclass(frozen=True)
class Rung:
    name: str  # e.g. "h0.5" or "all"
    hours: float  # requested; "all" is inf

    @property
    def folder(self) -> str:
        return self.name


def parse_rungs(text: str) -> list[Rung]:
    return [Rung("all", float("inf")) if x == "all" else Rung(f"h{float(x):g}", float(x)) for x in text.split(",")]


def rung_table(table: pd.DataFrame, hours: float) -> pd.DataFrame:
    """The segments of the first media items, in a fixed hashed order, until ``hours`` of segments.

    Nested by construction: a larger rung keeps every item of a smaller one.
    """
    durations = table.groupby("media_id")["duration"].sum()
    order = sorted(durations.index, key=lambda m: zlib.crc32(m.encode()))
    kept, total = [], 0.0
    for media in order:
        if total >= hours * 3600:
            break
        kept.append(media)
        total += durations[media]
    return table[table["media_id"].isin(kept)]


def pretrain(work: Path, rung: Rung, encoder: str, epochs: float, min_steps: int) -> Path:
    run = work / "pretrain" / encoder / rung.folder
    if (run / "encoder" / "model.safetensors").exists():
        return run
    table = rung_table(load_segments(work / "pool_extract"), rung.hours)
    data = work / "pretrain_data" / rung.folder
    if not (data / SEGMENTS_FILE).exists():
        # The table marks the step done, so it is written last and atomically.
        write_bytes_atomic(data / LABEL_CONFIG_FILE, (work / "pool_extract" / LABEL_CONFIG_FILE).read_bytes())
        write_atomic(data / SEGMENTS_FILE, lambda tmp: table.to_parquet(tmp))
    steps = max(min_steps, int(round(epochs * len(table) / BATCH_SIZE)))
    hours = float(table["duration"].sum() / 3600)
    write_json_atomic(data / "rung.json", {"segments": len(table), "media": int(table["media_id"].nunique()),
                                           "hours": hours, "steps": steps})
    return pretrain_encoder(data, run, encoder, TASKS_BY_DATA, steps)


BATCH_SIZE = 16  # pretraining batch of every scaling run


def pretrain_encoder(data: Path, run: Path, encoder: str, tasks: str, steps: int) -> Path:
    """``pretext/train.py`` with the scaling experiment's recipe on a label folder (resumable); the run folder."""
    if (run / "encoder" / "model.safetensors").exists():
        return run
    train(TrainConfig(data=str(data), tasks=tasks, encoder=encoder, encoder_options=ENCODERS[encoder],
                      out=str(run), max_steps=steps, batch_size=BATCH_SIZE, lr=1e-3,
                      warmup_steps=min(200, steps // 10), max_seconds=3.0, eval_every=max(100, steps // 10),
                      checkpoint_every=max(100, steps // 10), log_every=20, num_workers=2, report_to="none",
                      resume=(run / RUN_CONFIG_FILE).exists()))
    return run


def rung_hours(work: Path, rung: Rung) -> float:
    return json.loads((work / "pretrain_data" / rung.folder / "rung.json").read_text())["hours"]


def experiment_folder(work: Path, corpus: str, encoder: str, mode: str, rung: Rung) -> Path:
    return work / "experiments" / corpus / encoder / mode / rung.folder


def scratch_folder(work: Path, corpus: str, encoder: str, mode: str) -> Path:
    return work / "experiments" / corpus / encoder / mode / "scratch"


def run_cells(work: Path, corpus: str, encoder: str, mode: str, rung: Rung, fractions: list[float],
              seeds: list[int], folds: int, pretrained: str | None = None, manifest: Path | None = None) -> None:
    """One rung's pretrained-vs-scratch grid; scratch cells come from (and go to) one shared folder.
    ``pretrained``: the grid's ``--pretrained`` (a run folder, or a ``{fold}`` template); default the rung's
    run ``WORK/pretrain/<encoder>/<rung>``. ``manifest``: default ``WORK/<corpus>.csv``; scratch cells linked
    from another work folder name its manifest, and the grid admits only cells of the manifest it is given."""
    experiment = experiment_folder(work, corpus, encoder, mode, rung)
    shared_scratch = scratch_folder(work, corpus, encoder, mode)
    share_scratch_cells(shared_scratch, experiment)
    settings = (PROBE_SETTINGS if mode == "probe" else FINETUNE_SETTINGS) + [f"num_folds={folds}"]
    base = base_config(str(manifest or work / f"{corpus}.csv"), settings)
    run_grid(base, pretrained or str(work / "pretrain" / encoder / rung.folder), experiment, [mode], fractions, seeds)
    # Newly trained scratch cells move to the shared folder (and stay linked here) for the other rungs.
    for cell in sorted((experiment / "cells").glob("*-scratch-*")):
        if not cell.is_symlink() and (cell / "metrics.json").exists():
            target = shared_scratch / "cells" / cell.name
            target.parent.mkdir(parents=True, exist_ok=True)
            cell.rename(target)
            cell.symlink_to(target.resolve(), target_is_directory=True)


def baseline_folder(work: Path, corpus: str) -> Path:
    return work / "experiments" / corpus / "baseline"


def copy_manifest(work: Path, corpus: str, source: Path) -> Path:
    """``WORK/<corpus>.csv`` (the layout every grid here reads) as a copy of ``source``, unless it exists."""
    manifest = work / f"{corpus}.csv"
    if not manifest.exists():
        write_atomic(manifest, lambda tmp: tmp.write_bytes(source.read_bytes()))
    return manifest


def measured_arms(work: Path, corpus: str, encoder: str, arms, column: str) -> pd.DataFrame:
    """Every finished probe and fine-tuning cell of each arm's grid (an arm is a rung folder name, ``Rung(arm)``)
    and of the baseline, with ``column`` naming the arm (``none`` for the baseline's cells)."""
    tables = []
    for arm in arms:
        for mode in ("probe", "finetune"):
            folder = experiment_folder(work, corpus, encoder, mode, Rung(arm, float("inf")))
            if (folder / "cells").is_dir():
                tables.append(collect(folder, finished_cells(folder)).assign(**{column: arm}))
    baseline = baseline_folder(work, corpus)
    if (baseline / "cells").is_dir():
        tables.append(collect(baseline, finished_cells(baseline)).assign(**{column: "none"}))
    if not tables:
        raise ValueError(f"{work}: no finished cells")
    return pd.concat(tables, ignore_index=True)


def run_baseline(work: Path, corpus: str, fractions: list[float], seeds: list[int], folds: int,
                 modes=BASELINE_MODES) -> None:
    """eGeMAPS and ComParE + logistic regression on the corpus's folds (the fine-tuning grid's split settings,
    so their cells pair with every rung's)."""
    base = base_config(str(work / f"{corpus}.csv"), FINETUNE_SETTINGS + [f"num_folds={folds}"])
    run_grid(base, "", baseline_folder(work, corpus), list(modes), fractions, seeds)


def baseline_rows(work: Path, blocks) -> pd.DataFrame:
    """Every block's cells minus its corpus's eGeMAPS cells, matched on fraction, fold and seed (UAR points;
    empty when no baseline ran)."""
    rows = []
    for corpus, encoder, mode, rung, cells in blocks:
        folder = baseline_folder(work, corpus)
        if not (folder / "cells").is_dir():
            continue
        both = pd.concat([cells, collect(folder, finished_cells(folder))], ignore_index=True)
        against = baseline_paired(both)
        for _, r in against[against["mode"] == mode].iterrows() if len(against) else ():
            rows.append({"corpus": corpus, "encoder": encoder, "mode": mode, "init": r["init"],
                         "fraction": r["fraction"], "pretrain_hours": round(rung_hours(work, rung), 3),
                         "pairs": int(r["pairs"]), "diff": 100 * r["uar_diff"], "ci_low": 100 * r["uar_ci_low"],
                         "ci_high": 100 * r["uar_ci_high"], "ci_fold_low": 100 * r["uar_fold_ci_low"],
                         "ci_fold_high": 100 * r["uar_fold_ci_high"]})
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:3] + ["init"] + SUMMARY_COLUMNS[3:])
    return table.drop_duplicates(["corpus", "encoder", "mode", "init", "fraction", "pretrain_hours"])


def finished_blocks(work: Path, rungs: list[Rung]):
    """Yield (corpus, encoder, mode, rung, finished cells) for every rung folder of this work folder that has
    cells: read once, then summarised and archived."""
    for corpus in CORPORA:
        for encoder in ENCODERS:
            for mode in ("probe", "finetune"):
                for rung in rungs:
                    folder = experiment_folder(work, corpus, encoder, mode, rung)
                    if (folder / "cells").is_dir():
                        yield corpus, encoder, mode, rung, collect(folder, finished_cells(folder))


def archive_cells(work: Path, blocks, archive: Path) -> list[Path]:
    """Every finished cell (fold, seed, fraction, init, UAR, ...) of ``finished_blocks``, one CSV per corpus,
    encoder and mode in ``archive/cells/`` with the rung's folder name and hours, so the summary can be
    recomputed from what is committed; blocks this work folder has no cells for keep their archived file."""
    parts: dict[tuple, list[pd.DataFrame]] = {}
    for corpus, encoder, mode, rung, cells in blocks:
        parts.setdefault((corpus, encoder, mode), []).append(
            cells.assign(rung=rung.folder, pretrain_hours=round(rung_hours(work, rung), 3)))
    written = []
    for (corpus, encoder, mode), tables in parts.items():
        table = pd.concat(tables, ignore_index=True)
        path = archive / "cells" / f"{corpus}-{encoder}-{mode}.csv"
        write_atomic(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.4f"))
        written.append(path)
    return written


def summary_rows(work: Path, blocks) -> pd.DataFrame:
    """The curve: pretrained - scratch per corpus, encoder, mode, fraction and rung (UAR points)."""
    rows = []
    for corpus, encoder, mode, rung, cells in blocks:
        for _, r in paired_differences(cells).iterrows():
            rows.append({"corpus": corpus, "encoder": encoder, "mode": mode, "fraction": r["fraction"],
                         "pretrain_hours": round(rung_hours(work, rung), 3), "pairs": int(r["pairs"]),
                         "diff": 100 * r["uar_diff"], "ci_low": 100 * r["uar_ci_low"],
                         "ci_high": 100 * r["uar_ci_high"], "ci_fold_low": 100 * r["uar_fold_ci_low"],
                         "ci_fold_high": 100 * r["uar_fold_ci_high"]})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def report(work: Path, rungs: list[Rung], archive: Path) -> None:
    blocks = list(finished_blocks(work, rungs))  # every cell folder read once
    summary = merge_unmeasured_blocks(summary_rows(work, blocks), archive / "summary.csv",
                                      ["corpus", "encoder", "mode"])
    archive.mkdir(parents=True, exist_ok=True)
    write_atomic(archive / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False, float_format="%.2f"))
    plot_curve(summary, archive / "scaling.png")
    archive_cells(work, blocks, archive)
    tables = summary_markdown(summary) + "\n" + trend_markdown(curve_trend(summary))
    against = baseline_rows(work, blocks)
    if len(against):  # scratch cells are linked into every rung: one row per corpus, encoder, mode, fraction
        against = against[(against["init"] != "scratch")
                          | ~against.duplicated(["corpus", "encoder", "mode", "init", "fraction"])]
        write_atomic(archive / "vs_egemaps.csv", lambda tmp: against.to_csv(tmp, index=False, float_format="%.2f"))
        for corpus in CORPORA:
            folder = baseline_folder(work, corpus)
            if (folder / "cells").is_dir():
                cells = collect(folder, finished_cells(folder))
                write_atomic(archive / "cells" / f"{corpus}-baseline.csv",
                             lambda tmp: cells.to_csv(tmp, index=False, float_format="%.4f"))
        tables += "\n" + baseline_markdown(against)
    write_atomic(archive / "summary.md", lambda tmp: tmp.write_text(tables))
    print(tables)


def main() -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--encoders", default="cnn,crnn")
    parser.add_argument("--rungs", default="0.5,1,2,4,all", help="hours of pool audio per rung; all = the pool")
    parser.add_argument("--epochs", type=float, default=4.0, help="passes over a rung's segments in pretraining")
    parser.add_argument("--min-steps", type=int, default=400)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", default="prepare,extract,label,pretrain,probe,finetune,baseline,report")
    parser.add_argument("--archive", type=Path, default=REPO / "docs" / "results" / "scaling")
    args = parser.parse_args()
    work, steps = args.work, args.steps.split(",")
    work.mkdir(parents=True, exist_ok=True)
    rungs = parse_rungs(args.rungs)
    encoders = args.encoders.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    if "prepare" in steps:
        timed(work, "prepare", prepare, work, args.shared)
    if "extract" in steps:
        timed(work, "extract", extract, work, args.shared, args.workers)
    if "label" in steps:
        timed(work, "label", label, work)
    for encoder in encoders:
        if "pretrain" in steps:
            for rung in rungs:
                timed(work, f"pretrain_{encoder}_{rung.name}", pretrain, work, rung, encoder, args.epochs,
                      args.min_steps)
        for corpus in CORPORA:
            if "probe" in steps:
                for rung in rungs:
                    timed(work, f"probe_{corpus}_{encoder}_{rung.name}", run_cells, work, corpus, encoder, "probe",
                          rung, [0.1, 0.25, 0.5, 1.0], seeds, args.folds)
            if "finetune" in steps:
                for rung in (rungs[0], rungs[-1]):
                    timed(work, f"finetune_{corpus}_{encoder}_{rung.name}", run_cells, work, corpus, encoder,
                          "finetune", rung, [0.1, 0.25], seeds, args.folds)
    if "baseline" in steps:
        for corpus in CORPORA:
            timed(work, f"baseline_{corpus}", run_baseline, work, corpus, [0.1, 0.25, 0.5, 1.0], seeds, args.folds)
    if "report" in steps:
        report(work, rungs, args.archive)


if __name__ == "__main__":
    main()
