"""The labelling configuration: segmentation, speech detection and one section per pretext task.

Every threshold, region and rule is data here, with its default and the reason for it beside the field.
A config file (TOML or JSON) overrides any subset; unknown sections and keys are errors, never ignored.
``data_prep label --print-config`` prints the full resolved config to start from, as TOML with each field's
explanation (the comment beside the field in its dataclass) above it (:func:`config_toml`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import textwrap
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from avpretext.common.cli import field_comments
from pretext.tasks import DEFAULT_TASKS, TASKS, get_task


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
    max_s: float = 10.0  # the longest window, and in auto mode the longest clip kept whole
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
    min_speech_s: float = 0.1  # shorter bursts of sound are not speech (clicks, knocks)
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


def config_toml(config: LabelConfig) -> str:
    """``config`` as a TOML file that ``--config`` reads back to the same config, each field preceded by its
    explanation as comments. Tables of tables (the AU rule table) become ``[task.field.name]`` sections."""
    lines = ["# data_prep label config: every field with its explanation. Save as a .toml file, edit, and pass",
             "# it with --config; keys left out keep their defaults.", ""]
    lines += _comment(f"Pretext tasks to label, in order: built-in ({', '.join(TASKS)}) or plug-ins given as "
                      "module:Class or path/to/file.py:Class.")
    lines += [f"tasks = {_toml_value(list(config.tasks))}"]
    sections = {"segmentation": config.segmentation, "speech": config.speech, **config.task_configs}
    for name, section in sections.items():
        lines += ["", f"[{_toml_key(name)}]"]
        lines += _toml_table([_toml_key(name)], dataclasses.asdict(section), field_comments(type(section)))
    return "\n".join(lines) + "\n"


def _toml_table(path: list[str], values: dict, comments: dict[str, str]) -> list[str]:
    """The body of the table at ``path``: plain keys first (TOML puts a table's keys before its sub-tables),
    then each table of tables as one ``[path.key.name]`` section per entry."""
    lines, nested = [], []
    for key, value in values.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            nested.append(key)
            continue
        lines += _comment(comments.get(key, ""))
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key in nested:
        lines += [""] + _comment(comments.get(key, ""))
        for i, (name, table) in enumerate(values[key].items()):
            header = ".".join([*path, _toml_key(key), _toml_key(name)])
            lines += ([] if i == 0 else [""]) + [f"[{header}]"]
            lines += _toml_table([*path, _toml_key(key), _toml_key(name)], table, {})
    return lines


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, 108, break_on_hyphens=False)]


def _toml_key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key) else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else str(value).lower()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__} {value!r}")
