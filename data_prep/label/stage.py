"""Stage 2: cut speech segments and derive each pretext task's labels from the stored signals.

Cheap and re-runnable: it reads only what ``extract`` wrote, so a new threshold or rule table never decodes
a video again. Each task's derivation lives in its own module under ``pretext.tasks``; this module only
segments, calls the tasks, and writes the table and its statistics.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from data_prep import store
from data_prep.audio_features import mask_to_runs, speech_activity
from data_prep.segments import LABEL_CONFIG_FILE, SEGMENTS_FILE, STATS_FILE, relative_audio_paths, resolve_audio_paths
from data_prep.signals import MediaSignals, list_done_items, load_media
from pretext.tasks import get_task

from .config import LabelConfig, SegmentationConfig, build_label_config

# Warn when one class takes more than this share of a task's labels: the task would teach nothing.
DOMINANT_CLASS_SHARE = 0.9
# Class counts say nothing about whether a label is right; the audit compares them with reference labels.
AUDIT_HINT = ("data_prep audit DIR --references REFS.csv --out AUDIT_DIR "
              "(README: Auditing the pseudo-labels; docs/label_audit.md)")


def speech_regions(speech: np.ndarray, rate: float, max_pause_s: float) -> list[tuple[float, float]]:
    """(start_s, end_s) of speech regions, pauses up to ``max_pause_s`` bridged."""
    regions: list[list[float]] = []
    for lo, hi in mask_to_runs(speech):
        start, end = lo / rate, hi / rate
        if regions and start - regions[-1][1] <= max_pause_s:
            regions[-1][1] = end
        else:
            regions.append([start, end])
    return [(a, b) for a, b in regions]


def segment_speech(speech: np.ndarray, rate: float, cfg: SegmentationConfig) -> list[tuple[float, float]]:
    """Segments of one recording from its speech mask ``(E,) bool`` at ``rate`` frames per second.

    ``windows``: each speech region at least ``min_s`` long is split into the fewest equal windows of at
    most ``max_s`` (so every window is between ``min_s`` and ``max_s`` when the region is at least ``min_s``);
    shorter regions are dropped. ``clip``: one segment from the first to the last speech frame. ``auto``:
    ``clip`` when that span is at most ``max_s`` (and at least ``min_clip_s``), else ``windows``.
    """
    regions = speech_regions(speech, rate, cfg.max_pause_s)
    if not regions:
        return []
    span = (round(regions[0][0], 3), round(regions[-1][1], 3))
    if cfg.mode == "clip":
        return [span]
    if cfg.mode == "auto" and span[1] - span[0] <= cfg.max_s:
        return [span] if span[1] - span[0] >= cfg.min_clip_s else []
    segments = []
    for start, end in regions:
        length = end - start
        if length < cfg.min_s:
            continue
        pieces = int(np.ceil(length / cfg.max_s - 1e-9))
        bounds = np.linspace(start, end, pieces + 1)
        segments += [(round(float(a), 3), round(float(b), 3)) for a, b in zip(bounds[:-1], bounds[1:])]
    return segments


@dataclass
class LabelResult:
    table: pd.DataFrame
    stats: dict
    path: Path


def label_corpus(extract_dir: str | Path, config: LabelConfig | None = None, dest: str | Path | None = None,
                 progress: bool = True) -> LabelResult:
    """Segment every extracted item and label the segments for each task of ``config``.

    Args:
        extract_dir: an output folder of ``data_prep extract``.
        config: labelling config (defaults when None).
        dest: where to write ``segments.parquet``, ``label_stats.json`` and ``label_config.json``
            (default: ``extract_dir``).

    Returns:
        The segment table (audio paths absolute, as :func:`data_prep.segments.load_segments` gives them), its statistics, and the
        table's path.
    """
    config = config or build_label_config()
    extract_dir = Path(extract_dir)
    dest = store.check_output_folder(dest) if dest else extract_dir
    ids = list_done_items(extract_dir)
    if not ids:
        raise FileNotFoundError(f"{extract_dir}: no extracted items (run `data_prep extract` first)")
    medias = [load_media(extract_dir, i) for i in ids]
    skipped: dict[str, str] = {}
    segments_of: dict[str, list[tuple[float, float]]] = {}
    for media in medias:
        segments_of[media.id] = _segments(media, config, skipped)
    table, facts = derive_labels(medias, segments_of, config, progress)
    stats = label_statistics(table, config, facts, medias, skipped)
    path = _write_outputs(dest, table, stats, config)
    return LabelResult(resolve_audio_paths(table, Path.cwd()), stats, path)


def derive_labels(medias: list[MediaSignals], segments_of: dict[str, list[tuple[float, float]]],
                  config: LabelConfig, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """The segment table of ``segments_of`` (media id -> ``[(start_s, end_s)]``) labelled by every task of
    ``config``, and each task's facts for the statistics. Shared by ``label`` and ``audit`` (whole items)."""

    tasks = {name: get_task(name) for name in config.tasks}
    contexts = {name: task.fit_context(medias, config.task_configs[name]) for name, task in tasks.items()}
    rows = []
    for media in tqdm(medias, desc="label", unit="media", disable=not progress):
        segments = segments_of[media.id]
        if not segments:
            continue
        per_task = [task.segment_values(media, segments, config.task_configs[name], contexts[name])
                    for name, task in tasks.items()]
        for k, (start, end) in enumerate(segments):
            row = {"segment_id": f"{media.id}_{k:04d}", "media_id": media.id, "speaker": media.speaker,
                   "source": media.source, "audio_path": str(media.audio_path),
                   "start": start, "end": end, "duration": round(end - start, 3)}
            for values in per_task:
                row.update(values[k])
            rows.append(row)
    table = pd.DataFrame(rows)
    facts = {}
    if len(table):
        for name, task in tasks.items():
            table, facts[name] = task.assign_labels(table, config.task_configs[name])
    table["config_hash"] = config.hash()
    return table, facts


def detect_speech(media: MediaSignals, config: LabelConfig) -> None:
    """Set ``media.speech``, the speech-activity mask over its energy frames (empty without audio)."""
    s = config.speech
    media.speech = speech_activity(media.energy, s.threshold_below_peak_db, s.floor_db, s.min_speech_s, s.max_gap_s)


def _segments(media: MediaSignals, config: LabelConfig, skipped: dict[str, str]) -> list[tuple[float, float]]:
    detect_speech(media, config)
    if media.audio_path is None or len(media.energy) == 0:
        # Speech segments need sound; a photograph's face signals serve `data_prep audit` and fit-face-emotion.
        skipped[media.id] = "no audio: still image" if media.meta.get("still_image") else "no audio track"
        return []
    segments = segment_speech(media.speech, media.energy_rate, config.segmentation)
    if not segments:
        speech_s = media.speech.sum() / media.energy_rate
        cfg = config.segmentation
        shortest = min(cfg.min_s, cfg.min_clip_s) if cfg.mode == "auto" else cfg.min_s
        skipped[media.id] = (f"no speech region of at least {shortest} s "
                             f"({speech_s:.1f} s of speech frames)" if speech_s else "no speech (silent audio)")
    return segments


def label_statistics(table: pd.DataFrame, config: LabelConfig, facts: dict, medias: list[MediaSignals],
                     skipped: dict[str, str]) -> dict:
    """Class balance and coverage per task, AU rule firing, and warnings for degenerate labels."""
    stats: dict = {"config_hash": config.hash(), "media": len(medias), "segments": int(len(table)),
                   "speech_hours_in_segments": float(table["duration"].sum() / 3600) if len(table) else 0.0,
                   "media_without_segments": skipped, "tasks": {}, "warnings": [], "audit": AUDIT_HINT}
    if not len(table):
        stats["warnings"].append(_no_segments_warning(skipped, config))
    for name in config.tasks:
        if not len(table):
            break
        task = get_task(name)
        mask = table[task.mask_column].astype(bool)
        labels = table.loc[mask, task.label_column]
        classes = list(facts.get(name, {}).get("classes") or task.classes)
        counts = {cls: int((labels == i).sum()) for i, cls in enumerate(classes)}
        entry = {"labelled": int(mask.sum()), "coverage": float(mask.mean()), "class_counts": counts,
                 **{k: v for k, v in facts.get(name, {}).items() if k not in ("classes", "warnings")}}
        # A task's own checks of its labels (e.g. one k-means cluster taking most segments).
        stats["warnings"] += [f"{name}: {w}" for w in facts.get(name, {}).get("warnings", [])]
        if mask.any():
            extra, warnings = task.label_statistics(table[mask], classes)
            entry.update(extra)
            stats["warnings"] += [f"{name}: {w}" for w in warnings]
        stats["tasks"][name] = entry
        if mask.sum() == 0:
            stats["warnings"].append(f"{name}: no segment has a label")
        elif counts and max(counts.values()) > DOMINANT_CLASS_SHARE * mask.sum():  # (regression tasks: no classes)
            stats["warnings"].append(f"{name}: nearly constant label {counts}")
    return stats


def skip_reason_counts(skipped: dict[str, str]) -> dict[str, int]:
    """How many media had no segment, per reason (the per-media figures in brackets dropped)."""
    counts: dict[str, int] = {}
    for reason in skipped.values():
        key = reason.split(" (")[0]
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _no_segments_warning(skipped: dict[str, str], config: LabelConfig) -> str:
    reasons = "; ".join(f"{n} media had {reason}" for reason, n in skip_reason_counts(skipped).items())
    text = f"0 segments: {reasons}"
    if config.segmentation.mode == "windows" and any(r.startswith("no speech region") for r in skipped.values()):
        text += "; try segmentation.mode = auto (or clip) for pre-cut clips"
    return text


_COMMON_ENTRY_KEYS = ("labelled", "coverage", "class_counts", "group")


def task_specific_entries(entry: dict) -> dict:
    """The entries of one task's ``label_stats.json`` section beyond the ones every task has: its own facts and
    statistics (``PretextTask.assign_labels``, ``.label_statistics``), for whoever prints them."""
    return {key: value for key, value in entry.items() if key not in _COMMON_ENTRY_KEYS}


def format_statistics(stats: dict) -> str:
    lines = [f"{stats['segments']} segments ({stats['speech_hours_in_segments']:.3f} h) from "
             f"{stats['media']} media; {len(stats['media_without_segments'])} media without segments"]
    for name, entry in stats["tasks"].items():
        extra = f", group {entry['group']}" if "group" in entry else ""
        lines.append(f"  {name}: labelled {entry['labelled']} ({entry['coverage']:.0%}){extra}: {entry['class_counts']}")
        # The task's own facts and statistics (PretextTask.assign_labels, .label_statistics), whatever they are.
        lines += [f"    {key}: {value}" for key, value in task_specific_entries(entry).items()]
    lines += [f"  WARNING {w}" for w in stats["warnings"]]
    reasons = skip_reason_counts(stats["media_without_segments"])
    lines += [f"  no segments x{n}: {r}" for r, n in reasons.items()]
    lines.append(f"  check these labels against known emotions/arousal: {AUDIT_HINT}")
    return "\n".join(lines)


def _write_outputs(dest: Path, table: pd.DataFrame, stats: dict, config: LabelConfig) -> Path:
    """Publish the folder with the table last: until it is there, readers refuse the folder as unfinished
    (:func:`data_prep.segments.check_label_folder`), so a run killed part-way is never taken as complete."""
    dest.mkdir(parents=True, exist_ok=True)
    # A run killed mid-write left its temporary file; only these names: DEST may be any user folder.
    store.clean_stale_temp_files(dest, (SEGMENTS_FILE, STATS_FILE, LABEL_CONFIG_FILE))
    path = dest / SEGMENTS_FILE
    path.unlink(missing_ok=True)  # the previous run's table must not pass for this run's
    store.write_json_atomic(dest / STATS_FILE, stats)
    store.write_json_atomic(dest / LABEL_CONFIG_FILE, config.to_dict())
    stored = relative_audio_paths(table, dest)  # readable from any working folder (resolved on load)
    store.write_atomic(path, lambda tmp: stored.to_parquet(tmp, index=False))
    return path
