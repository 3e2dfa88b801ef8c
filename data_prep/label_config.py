"""The labelling configuration: segmentation, speech detection and one section per pretext task.

Every threshold, region and rule is data here, with its default and the reason for it beside the field.
A config file (TOML or JSON) overrides any subset; unknown sections and keys are errors, never ignored.
``data_prep label --print-config`` prints the full resolved default to start from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pretext.tasks import DEFAULT_TASKS, get_task


SEGMENTATION_MODES = ("auto", "windows", "clip")


@dataclass
class SegmentationConfig:
    # auto: a file whose speech spans at most max_s is one segment (a pre-cut clip: GRID sentences, LRW
    # words, acted utterances), a longer one is cut into windows; corpora mixing both need no per-corpus
    # setting. windows: fixed-length windows cut from speech regions (unsegmented talking-head video);
    # clip: one segment per file from its first to its last speech frame (pre-cut corpora).
    mode: str = "auto"
    # 3-10 s windows, like the segments of common talking-head corpora; long regions are split into equal
    # windows, and regions shorter than min_s are dropped.
    min_s: float = 3.0
    max_s: float = 10.0
    # auto: a pre-cut clip needs this much speech to be a segment (word-level cuts are about 1.2 s).
    min_clip_s: float = 1.0
    # Pauses up to this long stay inside one speech region (between phrases of one turn).
    max_pause_s: float = 1.0

    def __post_init__(self):
        if self.mode not in SEGMENTATION_MODES:
            raise ValueError(f"segmentation.mode {self.mode!r}: choose from {SEGMENTATION_MODES}")
        if not 0 < self.min_s <= self.max_s:
            raise ValueError("segmentation: need 0 < min_s <= max_s")
        if not 0 < self.min_clip_s <= self.max_s:
            raise ValueError("segmentation: need 0 < min_clip_s <= max_s")


@dataclass
class SpeechConfig:
    # Frames within this many dB of the recording's loud level (95th percentile) count as speech...
    threshold_below_peak_db: float = 35.0
    # ...if also above this absolute level (digital near-silence is never speech).
    floor_db: float = -55.0
    min_speech_s: float = 0.1
    # Bridges the short pauses between words.
    max_gap_s: float = 0.3


@dataclass
class LabelConfig:
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    task_configs: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"tasks": list(self.tasks), "segmentation": dataclasses.asdict(self.segmentation),
               "speech": dataclasses.asdict(self.speech)}
        for name in self.tasks:
            out[name] = dataclasses.asdict(self.task_configs[name])
        return out

    def hash(self) -> str:
        """Short hash of the resolved config: stored with every segment to tell label versions apart."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def build_label_config(overrides: dict | None = None) -> LabelConfig:
    """Defaults updated with ``overrides`` (a parsed config file). Unknown keys raise ValueError."""
    overrides = dict(overrides or {})
    tasks = overrides.pop("tasks", list(DEFAULT_TASKS))
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    instances = {name: get_task(name) for name in tasks}
    config = LabelConfig(tasks=list(tasks),
                         segmentation=_section(SegmentationConfig, overrides.pop("segmentation", {}), "segmentation"),
                         speech=_section(SpeechConfig, overrides.pop("speech", {}), "speech"))
    for name, task in instances.items():
        config.task_configs[name] = _section(task.Config, overrides.pop(name, {}), name, task.replaced_whole)
    if overrides:
        raise ValueError(f"unknown config sections {sorted(overrides)}; valid: tasks, segmentation, speech, "
                         f"{', '.join(tasks)}")
    return config


def load_label_config(path: str | Path | None) -> LabelConfig:
    """Read a TOML or JSON config file (None: defaults)."""
    if path is None:
        return build_label_config()
    path = Path(path)
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read label config: {err}") from err
    try:
        return build_label_config(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err


def _section(cls, values: dict, where: str, replaced_whole: tuple[str, ...] = ()):
    if not isinstance(values, dict):
        raise ValueError(f"config section [{where}] must be a table, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown keys in [{where}]: {sorted(unknown)}; valid: {sorted(names)}")
    merged = dataclasses.asdict(cls())
    for key, value in values.items():
        # Nested tables (e.g. au.thresholds) update the defaults instead of replacing them wholesale, except
        # those the task declares replaced whole (PretextTask.replaced_whole, e.g. the AU rule table).
        if isinstance(merged.get(key), dict) and isinstance(value, dict) and key not in replaced_whole:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return cls(**merged)
