"""Stage 1: decode each video once and keep its audio and per-frame face signals.

``extract_item`` is the pure per-item job (one video in, one ``items/<id>`` folder out);
``extract_corpus`` runs it over a corpus with an executor (workers, shards, resume, failures).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from . import store
from .aus import AU_NAMES
from .audio_features import ENERGY_RATE, StreamingEnergy, speech_activity
from .aus_pyfeat import PyFeatAUBackend, PyFeatUnavailable, pyfeat_weights_available
from .decode import (FRAME_DECODERS, SAMPLE_RATE, AudioInfo, DecodeError, VideoInfo, iter_audio_chunks,
                     iter_frames_image, probe_streams)
from .executors import Executor, ItemResult, ProcessExecutor
from .face_model import open_face_landmarker, resolve_face_model, sha256_of
from .face_signals import SMALL_FACE_PX, analyse_frames, write_derived_arrays
from .sources import (AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, MediaItem, discover_media,
                      is_audio_only, is_image, not_a_file_reason, select_shard)

FORMAT_VERSION = 1
SILENCE_PEAK_DB = -60.0  # a track whose loud level (95th percentile frame) stays below this is silent
NAMED_ITEMS = 3  # items named per warning or earlier failure in the summary; the rest are counted


@dataclass(frozen=True)
class ExtractOptions:
    """Options of an extraction run. Those marked (output) change the outputs, so a rerun must match them."""

    max_fps: float | None = 30.0  # (output) analysed frames per second; every frame of videos up to 30 fps
    max_side: int | None = 640  # (output) frames are downscaled so the longer side is at most this
    decoder: str = "pyav"  # (output) "pyav" or "decord"
    au_backend: str = "mediapipe"  # (output) "mediapipe" or "pyfeat"
    num_faces: int = 4  # (output) faces detected per frame (the count is recorded; one is tracked)
    face_model: str | None = None  # path of face_landmarker.task; resolved if None

    def output_fields(self) -> dict:
        fields = dataclasses.asdict(self)
        fields.pop("face_model")
        return fields


@dataclass
class WorkerState:
    options: ExtractOptions
    model_bytes: bytes
    au_backend: object | None  # a py-feat backend when requested


def init_worker(options: ExtractOptions) -> WorkerState:
    """Load the heavy models once per worker process."""
    model_bytes = Path(options.face_model or resolve_face_model()).read_bytes()
    backend = PyFeatAUBackend() if options.au_backend == "pyfeat" else None
    return WorkerState(options, model_bytes, backend)


def extract_item(state: WorkerState, item: MediaItem, out: str | Path) -> dict:
    """Extract one media file into ``out/items/<id>``, atomically. Returns its meta record.

    Raises:
        DecodeError (or any error): the item failed; nothing of it is published.
    """
    opts = state.options
    path = Path(item.path)
    reason = not_a_file_reason(path)
    if reason:
        raise DecodeError(f"{item.path}: {reason}")
    if path.stat().st_size == 0:
        raise DecodeError(f"{item.path}: empty file")
    started = time.perf_counter()
    timings = {"decode": 0.0, "face": 0.0, "audio": 0.0, "write": 0.0}
    still = is_image(item.path)
    try:
        # A still image is one frame and no sound: decoding it (iter_frames_image) is the probe.
        has_video, has_audio = (True, False) if still else probe_streams(item.path)
    except DecodeError as err:
        raise DecodeError(f"{item.path}: {err}") from err
    if is_audio_only(item.path):
        has_video = False
    if not has_video and not has_audio:
        raise DecodeError(f"{item.path}: neither a video nor an audio stream")
    work = store.make_work_dir(out, item.id)
    try:
        meta = {"id": item.id, "path": item.path, "relpath": item.relpath, "speaker": item.speaker,
                "format_version": FORMAT_VERSION, "options": opts.output_fields(), "warnings": [],
                "has_video": has_video, "has_audio": has_audio, "still_image": still}
        if has_audio:
            meta.update(_extract_audio(item.path, work, timings, meta["warnings"]))
        elif not still:  # a photograph has no sound by nature: nothing to warn about
            meta["warnings"].append("no audio track: no speech segments can come from this file")
        if has_video:
            meta.update(_extract_face(state, item.path, work, timings, meta["warnings"]))
        meta["duration_s"] = max(meta.get("video_duration_s", 0.0), meta.get("audio_duration_s", 0.0))
        t0 = time.perf_counter()
        store.fsync_tree(work)  # the data is on disk before meta.json says the item is complete
        timings["write"] += time.perf_counter() - t0
        meta["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        meta["timings_s"]["total"] = round(time.perf_counter() - started, 4)
        store.write_json_atomic(work / store.META_FILE, meta)
        store.commit_work_dir(work, out, item.id)
        return meta
    except DecodeError as err:
        shutil.rmtree(work, ignore_errors=True)
        message = str(err)
        raise DecodeError(message if item.path in message else f"{item.path}: {message}") from err
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _extract_audio(path: str, work: Path, timings: dict, warnings: list[str]) -> dict:
    """Write ``audio.flac`` (16 kHz mono) and ``energy.npy``, streaming. Returns meta fields."""
    t0 = time.perf_counter()
    info = AudioInfo()
    meter = StreamingEnergy()
    with sf.SoundFile(work / store.AUDIO_FILE, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16",
                      format="FLAC") as flac:
        for chunk in iter_audio_chunks(path, info):
            flac.write(np.clip(chunk, -1.0, 1.0))
            meter.feed(chunk)
    energy = meter.finish()
    np.save(work / store.ENERGY_FILE, energy)
    if info.truncated_at_s is not None:
        warnings.append(f"audio decoding stopped at {info.truncated_at_s:.2f} s (truncated or corrupt)")
    loud_db = float(np.percentile(energy, 95))
    speech_s = float(speech_activity(energy).sum() / ENERGY_RATE) if loud_db > SILENCE_PEAK_DB else 0.0
    if loud_db <= SILENCE_PEAK_DB:
        warnings.append(f"audio is silent (loud level {loud_db:.1f} dBFS <= {SILENCE_PEAK_DB} dBFS)")
    timings["audio"] += time.perf_counter() - t0
    return {"audio_duration_s": round(info.duration_s, 4), "audio_source_rate": info.source_rate,
            "audio_source_channels": info.source_channels, "audio_loud_level_db": round(loud_db, 2),
            "speech_s": round(speech_s, 3), "energy_rate_hz": ENERGY_RATE}


def _extract_face(state: WorkerState, path: str, work: Path, timings: dict, warnings: list[str]) -> dict:
    """Write ``face/*.npy`` for the analysed frames. Returns meta fields."""
    opts = state.options
    info = VideoInfo()
    still = is_image(path)
    decode = iter_frames_image if still else FRAME_DECODERS[opts.decoder]
    frames = decode(path, info, max_fps=opts.max_fps, max_side=opts.max_side)
    with open_face_landmarker(state.model_bytes, num_faces=opts.num_faces, still_image=still) as landmarker:
        counts = analyse_frames(frames, landmarker, work / store.FACE_DIR, timings, still_image=still)
    t0 = time.perf_counter()
    write_derived_arrays(work / store.FACE_DIR, info.width, info.height)
    timings["face"] += time.perf_counter() - t0
    extra = {}
    if state.au_backend is not None:
        extra["pyfeat_au_names"] = state.au_backend.rewrite_aus(path, work / store.FACE_DIR, opts, timings)
    warnings.extend(info.warnings)
    if info.rotation:
        warnings.append(f"rotation metadata {info.rotation} deg applied")
    if info.variable_frame_rate:
        warnings.append("variable frame rate: frames sampled by presentation time")
    if counts["face_frames"] == 0:
        warnings.append("no face found in any analysed frame: face and AU labels will be missing")
    if counts["multi_face_frames"]:
        warnings.append(f"several faces: {counts['multi_face_frames']} of {counts['frames']} analysed frames show "
                        f"2 or more (up to {counts['max_faces']}); one is tracked, the largest and then the one "
                        "overlapping it, which may not be the speaker")
    if counts["small_face_frames"]:
        warnings.append(f"small face: the tracked face is under {SMALL_FACE_PX} px (shorter side) in "
                        f"{counts['small_face_frames']} of {counts['face_frames']} face frames; its landmarks, "
                        "blendshapes and AUs are less reliable")
    return {"au_names": list(AU_NAMES), "video_duration_s": round(info.duration_s, 4), "native_fps": round(info.native_fps, 4),
            "frame_width": info.width, "frame_height": info.height, "rotation": info.rotation,
            "variable_frame_rate": info.variable_frame_rate, "frames_decoded": info.frames_decoded,
            "truncated_at_s": info.truncated_at_s, **counts,
            "face_coverage": round(counts["face_frames"] / counts["frames"], 4) if counts["frames"] else 0.0,
            **extra}


@dataclass
class ExtractSummary:
    """What one run did. ``failed``: items that failed in this run (id -> reason); ``failed_earlier``: items
    recorded as failed by an earlier run and not retried (no ``--retry-failed``); ``skipped``: items already
    done; ``warnings``: each warning's kind -> the ids of the items that got it in this run."""

    done: int = 0
    skipped: int = 0
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    failed_earlier: dict[str, str] = dataclasses.field(default_factory=dict)
    video_hours: float = 0.0
    speech_hours: float = 0.0
    face_frames: int = 0
    frames: int = 0
    warnings: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    wall_s: float = 0.0

    def report(self) -> str:
        coverage = self.face_frames / self.frames if self.frames else 0.0
        counts = f"done {self.done}, skipped (already done) {self.skipped}, failed {len(self.failed)}"
        if self.failed_earlier:
            counts += (f", failed in an earlier run {len(self.failed_earlier)} (not retried; --retry-failed "
                       "redoes them)")
        lines = [
            counts,
            f"media {self.video_hours:.3f} h, speech {self.speech_hours:.3f} h, face coverage {coverage:.1%} "
            f"of {self.frames} analysed frames, wall {self.wall_s:.1f} s",
        ]
        lines += [f"  warning x{len(ids)}: {w} ({name_some(ids)})" for w, ids in sorted(self.warnings.items())]
        lines += [f"  FAILED {item_id}: {reason}" for item_id, reason in sorted(self.failed.items())]
        earlier = sorted(self.failed_earlier.items())
        lines += [f"  FAILED in an earlier run {item_id}: {reason}" for item_id, reason in earlier[:NAMED_ITEMS]]
        if len(earlier) > NAMED_ITEMS:
            lines.append(f"  FAILED in an earlier run: and {len(earlier) - NAMED_ITEMS} more (reasons in failed/)")
        return "\n".join(lines)


def name_some(ids: list[str], limit: int = NAMED_ITEMS) -> str:
    """``a, b, c and 4 more``: the first ``limit`` ids (sorted), then how many others."""
    ids = sorted(ids)
    named = ", ".join(ids[:limit])
    return f"{named} and {len(ids) - limit} more" if len(ids) > limit else named


def extract_corpus(source: str | Path, out: str | Path, options: ExtractOptions = ExtractOptions(), *,
                   executor: Executor | None = None, shard: tuple[int, int] | None = None,
                   retry_failed: bool = False, progress: bool = True) -> ExtractSummary:
    """Extract every media file of ``source`` into ``out`` (see :mod:`data_prep.store` for the layout).

    Args:
        source: folder of videos/audio, or CSV manifest with a ``path`` column.
        out: output folder; finished items there are skipped, so a killed run is resumed by rerunning.
        options: see :class:`ExtractOptions`.
        executor: runs the items; each of its workers loads the face model once. None: one process, this one
            (``ProcessExecutor(workers=2)``: two processes; a ``RayExecutor``: a Ray cluster, and then ``out``
            must be on storage every machine of the cluster sees).
        shard: ``(index, count)``; defaults to the rank/world size of ``accelerate launch`` or ``torchrun``.
        retry_failed: also redo items recorded as failed by an earlier run.

    Returns:
        Counts of done/skipped/failed items with reasons, hours of media and speech, face coverage.
    """
    started = time.perf_counter()
    out = store.check_output_folder(out)
    options = _resolve_model(options)
    if options.au_backend == "pyfeat":
        # Checked here, once, with a clear message: a worker that fails to start would be restarted forever.
        available, reason = pyfeat_weights_available()
        if not available:
            raise PyFeatUnavailable(reason)
    items = discover_media(source, exclude=(out,))
    if not items:  # before anything is written, like every other input error
        raise ValueError(no_media_reason(source))
    shard_index, num_shards = shard or distributed_shard()
    items = select_shard(items, shard_index, num_shards)
    _check_run_config(out, options)
    store.clean_stale_work_dirs(out)
    for folder in (out, out / store.FAILED_DIR):  # killed atomic writes of configs, summaries, failures
        store.clean_stale_temp_files(folder)
    summary = ExtractSummary()
    todo = []
    for item in items:
        if store.is_done(out, item.id):
            summary.skipped += 1
        elif store.has_failed(out, item.id) and not retry_failed:
            summary.failed_earlier[item.id] = _recorded_reason(out, item.id)
        else:
            todo.append(item)
    process = functools.partial(extract_item, out=str(out))
    init = functools.partial(init_worker, options)
    bar = _progress_bar(len(todo), progress, f"extract {shard_index}/{num_shards}" if num_shards > 1 else "extract")
    for result in (executor or ProcessExecutor()).map(todo, process, init):
        _account(summary, result, out)
        if result.ok:
            bar.set_postfix_str(f"{summary.video_hours * 3600 / max(time.perf_counter() - started, 1e-9):.1f} media-s/s")
        else:
            bar.write(f"failed {result.item_id}: {result.error}", file=sys.stderr)
        bar.update(1)
    bar.close()
    # Workers that died during the run (a Ray actor killed and replaced) left their work folders; their
    # items were redone by others.
    store.clean_stale_work_dirs(out)
    summary.wall_s = time.perf_counter() - started
    store.write_json_atomic(out / f"summary_shard{shard_index}of{num_shards}.json", dataclasses.asdict(summary))
    return summary


def _account(summary: ExtractSummary, result: ItemResult, out: Path) -> None:
    if not result.ok:
        summary.failed[result.item_id] = result.error
        store.write_json_atomic(store.failure_path(out, result.item_id),
                                {"id": result.item_id, "reason": result.error, **result.summary})
        return
    meta = result.summary
    summary.done += 1
    summary.video_hours += meta["duration_s"] / 3600
    summary.speech_hours += meta.get("speech_s", 0.0) / 3600
    summary.frames += meta.get("frames", 0)
    summary.face_frames += meta.get("face_frames", 0)
    for warning in meta["warnings"]:
        summary.warnings.setdefault(warning_kind(warning), []).append(result.item_id)


def warning_kind(warning: str) -> str:
    """What a warning says, without the item's own figures (those stay in its meta.json), so that items with
    the same problem are counted together: ``audio is silent (loud level -93.1 dBFS ...)`` -> ``audio is
    silent``, ``rotation metadata 90 deg applied`` -> ``rotation metadata N deg applied``."""
    head = warning.split(":")[0].split(" (")[0]
    return re.sub(r"-?\d+(?:\.\d+)?", "N", head).strip()


def _recorded_reason(out: Path, item_id: str) -> str:
    try:
        return str(store.read_json(store.failure_path(out, item_id)).get("reason", "no reason recorded"))
    except (OSError, ValueError) as err:
        return f"failure record unreadable ({type(err).__name__})"


def no_media_reason(source: str | Path) -> str:
    """Why a corpus gave no item: what was looked for, where."""
    if Path(source).is_dir():
        def names(extensions) -> str:
            return " ".join(sorted(extensions))

        return (f"{source}: no media file found (searched the folder and its subfolders for video "
                f"{names(VIDEO_EXTENSIONS)}, audio {names(AUDIO_EXTENSIONS)} and image {names(IMAGE_EXTENSIONS)} "
                "files; extraction outputs inside it are skipped)")
    return f"{source}: the manifest lists no file (one row per media file, in a 'path' column)"


def _resolve_model(options: ExtractOptions) -> ExtractOptions:
    return dataclasses.replace(options, face_model=str(resolve_face_model(options.face_model)))


def _check_run_config(out: Path, options: ExtractOptions) -> None:
    """Refuse to mix outputs of different options in one folder (they would not be comparable)."""
    config = {"format_version": FORMAT_VERSION, **options.output_fields(),
              "face_model_sha256": sha256_of(options.face_model)}
    path = out / "extract_config.json"
    if path.exists():
        previous = store.read_json(path)
        if previous != config:
            diff = {k: (previous.get(k), v) for k, v in config.items() if previous.get(k) != v}
            raise ValueError(f"{out} holds an extraction made with other options {diff}; use another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(path, config)


def distributed_shard() -> tuple[int, int]:
    """(rank, world size) when launched by ``accelerate launch``/``torchrun`` (from their environment), else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def _progress_bar(total: int, enabled: bool, desc: str):
    return tqdm(total=total, disable=not enabled, desc=desc, unit="media", dynamic_ncols=True)
