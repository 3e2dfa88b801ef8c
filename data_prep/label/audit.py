"""``data_prep audit``: how far do a corpus's pseudo-labels agree with reference labels? (The scores; their
Markdown and PNG rendering is :mod:`data_prep.label.audit_report`.)

A pseudo-label is a claim about the face or the voice ("this segment shows anger", "this one is livelier than
its speaker's median"). Before pretraining on hours of it, a researcher wants to know how often the claim is
true on material whose answer is known. The audit scores every task of a label config against a reference
manifest (a CSV with a ``path`` or ``id`` column and any of ``emotion``, ``arousal``, ``speaker``), by what the
task says its label means (:attr:`pretext.tasks.base.PretextTask.label_meaning`), never by its name:

* ``emotion`` tasks (AU): accuracy and unweighted average recall (UAR) over the classes the task and the
  references share, the full confusion (reference x pseudo-label, table and PNG), and accuracy per speaker;
* ``arousal`` tasks (energy, face, any binary plug-in): AUC of the task's continuous score and accuracy of its
  label against high/low arousal (the ``arousal`` column, or the emotion mapped to arousal);
* other tasks: the class-by-reference table;
* each task's own diagnostics (:meth:`PretextTask.audit_values`, e.g. mean AU intensities), averaged per
  reference class.

It works on the segment table of ``data_prep label`` when there is one, or on whole items (one segment per
item from the first to the last face frame or audio sample), so video-only clips with one acted emotion each
are audited as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from avpretext.common.metrics import classification_metrics, roc_auc
from data_prep import store
from data_prep.face_emotion import EMOTION_ALIASES
from data_prep.segments import LABEL_CONFIG_FILE, SEGMENTS_FILE, load_segments
from data_prep.signals import MediaSignals, list_done_items, load_media
from pretext.tasks import get_task

from .audit_report import write_audit
from .config import LabelConfig, build_label_config
from .stage import derive_labels, detect_speech

# Emotion class -> arousal side (circumplex placements of Russell 1980 and the acted-corpus conventions, e.g.
# RAVDESS, MSP-Podcast): classes with no clear side (disgust, contempt) are left out rather than guessed.
AROUSAL_OF_EMOTION = {"anger": "high", "fear": "high", "happiness": "high", "surprise": "high",
                      "sadness": "low", "neutral": "low", "calm": "low", "boredom": "low"}


@dataclass
class AuditOptions:
    """How reference labels are read. ``aliases`` and ``arousal_of`` extend (and override) the defaults."""

    aliases: dict[str, str] = field(default_factory=dict)
    arousal_of: dict[str, str] = field(default_factory=dict)
    # None: the segment table when the folder has one, else whole items; True/False force either.
    whole_items: bool | None = None

    def __post_init__(self):
        self.aliases = {**EMOTION_ALIASES, **{k.lower(): v for k, v in self.aliases.items()}}
        self.arousal_of = {**AROUSAL_OF_EMOTION, **self.arousal_of}
        bad = {k: v for k, v in self.arousal_of.items() if v not in ("high", "low", "")}
        if bad:
            raise ValueError(f"arousal map: sides must be high, low or empty, got {bad}")


def read_references(path: str | Path) -> pd.DataFrame:
    """The reference manifest: ``key`` columns (``path`` and/or ``id``) and any of emotion (or ``label``, as in
    ``finetune.prepare`` manifests), arousal, speaker.

    Relative paths are relative to the manifest's folder, as in ``data_prep extract``.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the reference manifest: {err}") from err
    if "emotion" not in table and "label" in table:  # a finetune.prepare manifest: path, label, speaker
        table = table.rename(columns={"label": "emotion"})
    if not {"path", "id"} & set(table.columns):
        raise ValueError(f"{path}: a reference manifest needs a 'path' or 'id' column (has {list(table.columns)})")
    if not {"emotion", "arousal"} & set(table.columns):
        raise ValueError(f"{path}: no reference label: give an 'emotion' (or 'label') and/or 'arousal' column")
    if "path" in table:
        table["abspath"] = [str((Path(p) if Path(p).is_absolute() else path.parent / p).resolve()) if p else ""
                            for p in table["path"]]
    return table


def match_references(medias: list[MediaSignals], references: pd.DataFrame) -> tuple[dict[str, int], list[str]]:
    """Media id -> row of ``references``, by id, then absolute path, then path as given, then file name
    (the file name only when it is unique on both sides). Returns the map and the unmatched references."""
    lookups: list[tuple[str, dict[str, int]]] = []

    def index(column: str, transform=lambda v: v) -> dict[str, int]:
        keys = [transform(v) for v in references[column]] if column in references else []
        counts = pd.Series(keys).value_counts() if keys else pd.Series(dtype=int)
        return {k: i for i, k in enumerate(keys) if k and counts[k] == 1}

    lookups.append(("id", index("id")))
    lookups.append(("abspath", index("abspath")))
    lookups.append(("relpath", index("path")))
    lookups.append(("name", index("path", lambda v: Path(v).name)))
    names = pd.Series([Path(m.meta.get("relpath", "")).name for m in medias]).value_counts()
    matched: dict[str, int] = {}
    for m in medias:
        relpath = m.meta.get("relpath", "")
        keys = {"id": m.id, "abspath": str(Path(m.meta.get("path", "")).resolve()) if m.meta.get("path") else "",
                "relpath": relpath, "name": Path(relpath).name if names.get(Path(relpath).name, 0) == 1 else ""}
        for kind, lookup in lookups:
            if keys[kind] and keys[kind] in lookup:
                matched[m.id] = lookup[keys[kind]]
                break
    used = set(matched.values())
    key = "path" if "path" in references else "id"
    unmatched = [references[key].iloc[i] for i in range(len(references)) if i not in used]
    return matched, unmatched


def whole_item_segments(medias: list[MediaSignals], config: LabelConfig) -> dict[str, list[tuple[float, float]]]:
    """One segment per item: from 0 to the end of its face frames or audio, whichever is later."""
    segments = {}
    for m in medias:
        detect_speech(m, config)
        end = len(m.energy) / m.energy_rate if len(m.energy) else 0.0
        if m.face is not None and len(m.face["times"]):
            times = np.asarray(m.face["times"])
            step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
            end = max(end, float(times[-1]) + step)
        segments[m.id] = [(0.0, round(end, 3))] if end > 0 else []
    return segments


def reference_columns(table: pd.DataFrame, references: pd.DataFrame, matched: dict[str, int],
                      options: AuditOptions) -> pd.DataFrame:
    """``table`` with ``ref_emotion`` (canonical class name), ``ref_arousal`` (1 high, 0 low, NaN neither) and
    ``ref_speaker`` per segment; segments of items without a reference are dropped."""
    rows = table["media_id"].map(matched)
    table = table[rows.notna()].copy()
    rows = rows[rows.notna()].astype(int)
    ref = references.iloc[rows.to_numpy()].reset_index(drop=True)
    table = table.reset_index(drop=True)
    if "emotion" in ref:
        names = ref["emotion"].str.strip().str.lower()
        table["ref_emotion"] = [options.aliases.get(n, n) if n else None for n in names]
    else:
        table["ref_emotion"] = None
    table["ref_arousal"] = _arousal(ref, table["ref_emotion"], options)
    speaker = ref["speaker"] if "speaker" in ref else pd.Series("", index=ref.index)
    fallback = table["speaker"] if "speaker" in table else pd.Series(None, index=table.index)
    table["ref_speaker"] = [s or (f or "") for s, f in zip(speaker, fallback.fillna(""))]
    return table


def _arousal(ref: pd.DataFrame, emotion: pd.Series, options: AuditOptions) -> np.ndarray:
    """1 high / 0 low / NaN: from the ``arousal`` column (high/low names, or numbers split at their median;
    middle values are left out), else from the emotion via ``options.arousal_of``."""
    out = np.full(len(ref), np.nan)
    if "arousal" in ref and (ref["arousal"] != "").any():
        values = ref["arousal"].str.strip().str.lower()
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().sum() == (values != "").sum():
            median = float(np.nanmedian(numbers))
            out[numbers > median] = 1.0
            out[numbers < median] = 0.0
        else:
            out[values.isin(["high", "h", "active"]).to_numpy()] = 1.0
            out[values.isin(["low", "l", "passive"]).to_numpy()] = 0.0
        return out
    sides = emotion.map(lambda e: options.arousal_of.get(e, "") if e else "")
    out[(sides == "high").to_numpy()] = 1.0
    out[(sides == "low").to_numpy()] = 0.0
    return out


def audit_emotion_task(table: pd.DataFrame, task, classes: list[str]) -> dict:
    """Accuracy / UAR over shared classes, the confusion, per-class recall and per-speaker accuracy."""
    labelled = table[table[task.mask_column].astype(bool) & table["ref_emotion"].notna()]
    predicted = np.array(classes, dtype=object)[labelled[task.label_column].to_numpy(dtype=int)]
    reference = labelled["ref_emotion"].to_numpy(dtype=object)
    confusion = pd.crosstab(pd.Series(reference, name="reference"), pd.Series(predicted, name="pseudo-label"))
    confusion = confusion.reindex(columns=classes, fill_value=0)
    shared = [c for c in classes if c in set(reference)]
    in_shared = np.isin(reference, shared)
    hits = predicted[in_shared] == reference[in_shared]
    index = {c: i for i, c in enumerate(classes)}
    scores = classification_metrics([index[c] for c in reference[in_shared]],
                                    [index[c] for c in predicted[in_shared]], classes)
    recall = {c: scores["per_class"][c]["recall"] for c in shared}
    speakers = {}
    for speaker in sorted(set(labelled["ref_speaker"])):
        mine = in_shared & (labelled["ref_speaker"].to_numpy() == speaker)
        if mine.any():
            speakers[speaker or "(unknown)"] = {"n": int(mine.sum()),
                                                "accuracy": float(np.mean(predicted[mine] == reference[mine]))}
    return {"meaning": "emotion", "segments": int(len(labelled)),
            "unlabelled_segments": int((~table[task.mask_column].astype(bool)).sum()),
            "shared_classes": shared, "n_shared": int(in_shared.sum()),
            "accuracy": scores["accuracy"], "uar": scores["uar"],
            "recall": recall, "per_speaker": speakers,
            "classes_found": sorted(set(predicted[in_shared][hits])),
            "confusion": {"rows": list(confusion.index), "columns": list(confusion.columns),
                          "counts": confusion.to_numpy().tolist()}}


def audit_arousal_task(table: pd.DataFrame, task) -> dict:
    """AUC of the task's score and accuracy of its label against high/low arousal references."""
    mask = table[task.mask_column].astype(bool) & table["ref_arousal"].notna()
    part = table[mask]
    positive = part["ref_arousal"].to_numpy() == 1
    result = {"meaning": "arousal", "segments": int(len(part)), "high": int(positive.sum()),
              "low": int((~positive).sum()),
              "accuracy": float(np.mean(part[task.label_column].to_numpy() == positive.astype(int)))
              if len(part) else float("nan"), "auc": float("nan")}
    if task.score_column and task.score_column in part:
        score = part[task.score_column].to_numpy(dtype=np.float64)
        finite = np.isfinite(score)
        result["auc"] = roc_auc(score[finite], positive[finite])
    if table["ref_emotion"].notna().any():  # share of segments labelled 1 (high) per reference emotion
        labelled = table[table[task.mask_column].astype(bool) & table["ref_emotion"].notna()]
        result["high_share_by_emotion"] = {e: float(g[task.label_column].mean())
                                           for e, g in labelled.groupby("ref_emotion")}
    return result


def audit_other_task(table: pd.DataFrame, task, classes: list[str]) -> dict:
    """Classes without a reference meaning: how the references spread over them."""
    reference = "ref_emotion" if table["ref_emotion"].notna().any() else "ref_arousal"
    labelled = table[table[task.mask_column].astype(bool) & table[reference].notna()]
    names = np.array(classes, dtype=object)[labelled[task.label_column].to_numpy(dtype=int)] if classes else \
        labelled[task.label_column].astype(str).to_numpy()
    counts = pd.crosstab(labelled[reference].astype(str).to_numpy(), names)
    return {"meaning": "", "segments": int(len(labelled)), "reference": reference,
            "table": {"rows": list(counts.index), "columns": list(counts.columns),
                      "counts": counts.to_numpy().tolist()}}


def diagnostics_by_reference(values: pd.DataFrame, reference: pd.Series) -> dict:
    """Mean of each diagnostic column per reference class: ``{column: {class: mean}}``."""
    if values.empty or reference.isna().all():
        return {}
    means = values.groupby(reference.to_numpy()).mean(numeric_only=True)
    return {column: {str(k): (None if pd.isna(v) else round(float(v), 4)) for k, v in means[column].items()}
            for column in means.columns}


@dataclass
class AuditResult:
    report: dict
    table: pd.DataFrame
    folder: Path


def audit_labels(extract_dir: str | Path, references: str | Path, out: str | Path,
                 config: LabelConfig | None = None, segments: str | Path | None = None,
                 options: AuditOptions | None = None) -> AuditResult:
    """Audit every task of ``config`` on ``extract_dir`` against the reference manifest ``references``.

    Args:
        extract_dir: an output folder of ``data_prep extract``.
        references: CSV with ``path`` or ``id`` and any of ``emotion``, ``arousal``, ``speaker``.
        out: folder for ``audit.md``, ``audit.json`` and one confusion PNG per emotion task.
        config: label config for whole-item labelling; default: the segment table's own config when one is
            audited, else the defaults.
        segments: a ``data_prep label`` output folder (or parquet) to audit; default: ``extract_dir``'s own
            table when it has one and ``options.whole_items`` is not True.

    Returns:
        The report (also written as JSON), the audited segment table with reference columns, the folder.
    """
    options = options or AuditOptions()
    extract_dir = Path(extract_dir)
    out = store.check_output_folder(out)
    ids = list_done_items(extract_dir)
    if not ids:
        raise FileNotFoundError(f"{extract_dir}: no extracted items (run `data_prep extract` first)")
    refs = read_references(references)
    medias = [load_media(extract_dir, i) for i in ids]
    matched, unmatched = match_references(medias, refs)
    if not matched:
        raise ValueError(f"{references}: no reference matches an extracted item of {extract_dir} "
                         f"(matched by id, path or file name)")
    table_path = Path(segments) if segments else extract_dir
    table_file = table_path / SEGMENTS_FILE if table_path.is_dir() else table_path
    use_table = options.whole_items is False or (options.whole_items is None and table_file.exists())
    if use_table:
        if not table_file.exists():
            raise FileNotFoundError(f"{table_file}: no segment table (run `data_prep label`, or audit whole items)")
        table = load_segments(table_file)
        if config is None:
            config = build_label_config(store.read_json(table_file.parent / LABEL_CONFIG_FILE))
        for m in medias:
            detect_speech(m, config)
        unit = f"segments of {table_file}"
    else:
        config = config or build_label_config()
        table, _ = derive_labels([m for m in medias if m.id in matched],
                                 whole_item_segments([m for m in medias if m.id in matched], config), config)
        unit = "whole items"
    if not len(table):
        raise ValueError(f"{extract_dir}: nothing to audit ({unit}: none)")
    table = reference_columns(table, refs, matched, options)
    report = {"extract_dir": str(extract_dir), "references": str(references), "unit": unit,
              "items_matched": len(matched), "references_unmatched": unmatched[:50],
              "references_unmatched_count": len(unmatched), "segments": int(len(table)),
              "config_hash": config.hash(), "tasks": {}}
    by_id = {m.id: m for m in medias}
    for name in config.tasks:
        task, cfg = get_task(name), config.task_configs[name]
        classes = _class_names(task, cfg)
        if task.label_meaning == "emotion" and table["ref_emotion"].notna().any():
            entry = audit_emotion_task(table, task, classes)
        elif task.label_meaning == "arousal" and table["ref_arousal"].notna().any():
            entry = audit_arousal_task(table, task)
        else:
            entry = audit_other_task(table, task, classes)
        if callable(getattr(cfg, "describe", None)):  # how the task labels (e.g. the AU task's mapping)
            entry["labelling"] = cfg.describe()
        values = _audit_values(task, cfg, table, [m for m in medias if m.id in matched], by_id)
        if not values.empty:
            entry["diagnostics"] = diagnostics_by_reference(values, table["ref_emotion"].where(
                table["ref_emotion"].notna(), table["ref_arousal"].map({1.0: "high", 0.0: "low"})))
        report["tasks"][name] = entry
    write_audit(out, report, table)
    return AuditResult(report, table, out)


def _class_names(task, cfg) -> list[str]:
    names = getattr(cfg, "class_names", None)
    return list(names) if names else list(task.classes)


def _audit_values(task, cfg, table: pd.DataFrame, medias: list[MediaSignals], by_id: dict) -> pd.DataFrame:
    """The task's diagnostics for every row of ``table`` (same index), NaN where it gives none."""
    context = task.fit_context(medias, cfg)
    rows: dict[int, dict] = {}
    for media_id, part in table.groupby("media_id"):
        spans = list(zip(part["start"].astype(float), part["end"].astype(float)))
        for index, values in zip(part.index, task.audit_values(by_id[media_id], spans, cfg, context)):
            rows[index] = values
    return pd.DataFrame.from_dict(rows, orient="index").reindex(table.index) if any(rows.values()) \
        else pd.DataFrame()
