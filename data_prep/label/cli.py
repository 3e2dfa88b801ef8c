"""The ``data_prep`` command (``extract``, ``label``, ``audit``, ``fit-face-emotion``): thin wrappers over the
library functions. It lives with the label stage, the top of data_prep; ``python -m data_prep`` is a shim to it.

Exit codes: 0 when every item of the run is done; 1 when ``extract`` leaves items failed (in this run, or in an
earlier one and not retried; each listed with its reason; the others are done); 2 for a usage or input error
found before any work (bad option, missing input, a folder without media files, ``--out`` that is a file, options
that differ from the output folder's, bad label config), reported in one line.
"""
from __future__ import annotations

import argparse
import sys

from avpretext.common.cli import CommandParser
from data_prep.aus_pyfeat import PyFeatUnavailable
from data_prep.decode import FRAME_DECODERS
from data_prep.executors import EXECUTORS, ExecutorUnavailable, ProcessExecutor, make_executor
from data_prep.extract import ExtractOptions, extract_corpus
from data_prep.face_emotion_fit import format_fit, run_fit
from data_prep.face_model import FaceModelError

from .audit import AuditOptions, audit_labels
from .audit_report import format_audit
from .config import config_toml, load_label_config
from .stage import format_statistics, label_corpus


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: expected I/N, e.g. 0/4") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text}: N (the number of shards) must be at least 1")
    if not 0 <= index < count:
        # Shards count from 0, like ranks: 0/N to N-1/N.
        raise argparse.ArgumentTypeError(f"{text}: I must be in 0..{count - 1} (shards count from 0: "
                                         f"0/{count} to {count - 1}/{count})")
    return index, count


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="data_prep", description="Video corpus -> pretext pseudo-labels.")
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("extract", help="decode media once: audio, energy and per-frame face signals")
    ex.add_argument("videos", help="folder (searched recursively) or CSV manifest with a 'path' column")
    ex.add_argument("--out", required=True, help="output folder (rerun to resume)")
    ex.add_argument("--workers", type=int, default=None,
                    help="worker processes on this machine (default 1); with --executor ray, actors over the "
                         "cluster (default: one per CPU of the cluster)")
    ex.add_argument("--executor", choices=list(EXECUTORS), default=ProcessExecutor.name,
                    help="processes: --workers processes on this machine (default); ray: a Ray cluster, items "
                         "handed out as workers free up, a dead worker's item retried (pip install "
                         "'avpretext[ray]')")
    ex.add_argument("--ray-address", default=None,
                    help="with --executor ray: 'auto' or HOST:PORT of a running cluster (ray start --head); "
                         "default: a local cluster on this machine for the run")
    ex.add_argument("--shard", type=_parse_shard, default=None,
                    help="I/N: process shard I of N, counted from 0 (0/N to N-1/N; default: from accelerate "
                         "launch/torchrun, else 0/1)")
    ex.add_argument("--decoder", choices=sorted(FRAME_DECODERS), default="pyav",
                    help="video frame decoder (default pyav: faster and flat memory here; decord rotates by metadata)")
    ex.add_argument("--fps", type=float, default=30.0, help="analysed frames per second (max; default 30)")
    ex.add_argument("--max-side", type=int, default=640, help="downscale frames to this longer side (0: never)")
    ex.add_argument("--num-faces", type=int, default=4, help="faces detected per frame (one is tracked)")
    ex.add_argument("--au-backend", choices=["mediapipe", "pyfeat"], default="mediapipe",
                    help="AU estimates from mediapipe blendshapes + geometry (default) or py-feat (optional extra)")
    ex.add_argument("--face-model", default=None,
                    help="path of face_landmarker.task (else $AVPRETEXT_FACE_MODEL, cache, download)")
    ex.add_argument("--retry-failed", action="store_true", help="redo items that failed in an earlier run")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")

    lab = sub.add_parser("label", help="segment speech and derive pretext labels from extracted signals")
    lab.add_argument("dir", nargs="?", help="an output folder of `data_prep extract`")
    lab.add_argument("--config", default=None, help="TOML or JSON label config (overrides the defaults)")
    lab.add_argument("--out", default=None, help="where to write segments.parquet (default: DIR)")
    lab.add_argument("--print-config", action="store_true", help="print the resolved config (defaults, or --config's) as TOML, "
                     "each field explained in a comment, and exit")
    lab.add_argument("--no-progress", action="store_true", help="no progress bar")

    aud = sub.add_parser("audit", help="score each task's pseudo-labels against reference labels (emotion, arousal)")
    aud.add_argument("dir", help="an output folder of `data_prep extract` (labelled or not)")
    aud.add_argument("--references", required=True,
                     help="CSV with a path or id column and any of emotion, arousal, speaker")
    aud.add_argument("--out", required=True, help="folder for audit.md, audit.json and the confusion PNGs")
    aud.add_argument("--segments", default=None,
                     help="a `data_prep label` output folder to audit (default: DIR's own segment table, if any)")
    unit = aud.add_mutually_exclusive_group()
    unit.add_argument("--whole-items", dest="whole_items", action="store_const", const=True, default=None,
                      help="one segment per item (video-only clips with one emotion each), even if labelled")
    unit.add_argument("--use-segments", dest="whole_items", action="store_const", const=False,
                      help="require the segment table")
    aud.add_argument("--config", default=None,
                     help="label config for whole items (default: the segment table's, else the defaults)")
    aud.add_argument("--alias", action="append", default=[], metavar="NAME=CLASS",
                     help="map a reference emotion name to a task class (repeatable), e.g. furious=anger")
    aud.add_argument("--arousal", action="append", default=[], metavar="CLASS=high|low",
                     help="arousal side of an emotion class (repeatable; empty leaves it out), e.g. contempt=low")

    fit = sub.add_parser("fit-face-emotion",
                         help="fit a face-emotion mapping (for au.mapping = learned) on labelled images or videos")
    fit.add_argument("source", help="CSV manifest with path, emotion, identity (optional corpus) columns, or a "
                                    "folder with one sub-folder per emotion (EMOTION/IDENTITY/file or EMOTION/file)")
    fit.add_argument("--out", required=True, help="the mapping file to write (JSON)")
    fit.add_argument("--extract-dir", default=None,
                     help="where the files' face signals are extracted (resumable; default: OUT's name + _extract)")
    fit.add_argument("--features", action="append", default=None,
                     help="candidate feature set to try (repeatable; default: all): blendshapes, blendshapes+aus, "
                          "blendshapes+aus+geometry, blendshapes+aus+geometry+measures (engineered brow/eye/mouth "
                          "distances and angles), upper face")
    fit.add_argument("--standardise", choices=["corpus", "corpus-mean", "training"], default="corpus",
                     help="corpus (default): each training corpus centred on its neutral faces and scaled by its "
                          "spread, a labelled corpus centred on its median frame; corpus-mean: centred on the "
                          "corpus mean (the mappings before 2026-12-07); training: the training statistics only")
    fit.add_argument("--folds", type=int, default=5, help="GroupKFold folds over identities (default 5)")
    fit.add_argument("--workers", type=int, default=None, help="extraction worker processes (default 1)")
    fit.add_argument("--face-model", default=None, help="path of face_landmarker.task (as for extract)")
    fit.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "extract":
        return _extract(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "fit-face-emotion":
        return _fit_face_emotion(args)
    return _label(args)


def _input_error_exit(command: str, err: Exception) -> int:
    print(f"data_prep {command}: error: {err}", file=sys.stderr)
    return 2


# Errors of the input, not of the code: one line and exit 2 (README: Exit codes).
INPUT_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError)


def _extract(args) -> int:
    options = ExtractOptions(max_fps=args.fps or None, max_side=args.max_side or None, decoder=args.decoder,
                             au_backend=args.au_backend, num_faces=args.num_faces, face_model=args.face_model)
    try:
        executor = make_executor(args.executor, args.workers, ray_address=args.ray_address)
        summary = extract_corpus(args.videos, args.out, options, executor=executor, shard=args.shard,
                                 retry_failed=args.retry_failed, progress=not args.no_progress)
    except (FaceModelError, PyFeatUnavailable, ExecutorUnavailable, *INPUT_ERRORS) as err:
        return _input_error_exit("extract", err)
    print(summary.report())
    return 1 if summary.failed or summary.failed_earlier else 0


def _label(args) -> int:
    try:
        config = load_label_config(args.config)
        if args.print_config:
            print(config_toml(config), end="")
            return 0
        if not args.dir:
            raise ValueError("DIR is required")
        result = label_corpus(args.dir, config, dest=args.out, progress=not args.no_progress)
    except INPUT_ERRORS as err:
        return _input_error_exit("label", err)
    print(format_statistics(result.stats))
    print(f"wrote {result.path} (load with data_prep.segments.load_segments)")
    return 0


def _fit_face_emotion(args) -> int:
    try:
        result = run_fit(args.source, args.out, extract_dir=args.extract_dir, features=args.features,
                         n_splits=args.folds, workers=args.workers, face_model=args.face_model,
                         progress=not args.no_progress, standardise=args.standardise)
    except (FaceModelError, *INPUT_ERRORS) as err:
        return _input_error_exit("fit-face-emotion", err)
    print(format_fit(result))
    print(f"wrote {args.out} (use it with au.mapping = \"learned\", au.mapping_file = \"{args.out}\")")
    return 0


def _audit(args) -> int:
    try:
        config = load_label_config(args.config) if args.config else None
        result = audit_labels(args.dir, args.references, args.out, config=config, segments=args.segments,
                              options=audit_options_from_pairs(args.alias, args.arousal, args.whole_items))
    except INPUT_ERRORS as err:
        return _input_error_exit("audit", err)
    print(format_audit(result.report))
    print(f"wrote {result.folder / 'audit.md'} (and audit.json, PNGs)")
    return 0


def audit_options_from_pairs(aliases: list[str], arousal: list[str], whole_items: bool | None) -> AuditOptions:
    """Options from CLI ``NAME=CLASS`` pairs (``--alias furious=anger``, ``--arousal contempt=low``)."""
    def pairs(items: list[str], flag: str) -> dict[str, str]:
        out = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"{flag} {item!r}: expected NAME=VALUE")
            out[key.strip().lower()] = value.strip()
        return out

    return AuditOptions(aliases=pairs(aliases, "--alias"), arousal_of=pairs(arousal, "--arousal"),
                        whole_items=whole_items)
