"""Corpus recipes: each emotion corpus's own layout -> one fine-tuning manifest.

Every ``prepare_<corpus>(root, **options)`` returns a pandas DataFrame with exactly these columns, in order
(``MANIFEST_COLUMNS``), one row per labelled utterance, sorted by path:

* ``path`` (str): absolute path of the audio file.
* ``label`` (str): the categorical emotion, a lower-case English word ("neutral", "happy", "angry", ...).
  Utterances without a categorical label (no agreement, "other", classes not asked for) are dropped.
* ``speaker`` (str): a speaker id unique within the corpus ("01" for RAVDESS actor 1, "1001" for CREMA-D,
  "Ses01F" for IEMOCAP). Always a string, so leading zeros survive.
* ``gender`` (str): "female", "male", or "" when unknown.
* ``split`` (str): "train" / "dev" / "test" when the corpus defines (or the recipe makes) a fixed partition,
  else "". Splits are always speaker-disjoint (``check_speaker_disjoint``).
* ``fold`` (int): a predefined cross-validation group (IEMOCAP session 1..5), else -1.
* ``arousal``, ``valence``, ``dominance`` (float, optional): dimensional ratings, MSP-Podcast only.

Files or rows that do not become manifest rows (names not following the corpus convention, labels dropped on
purpose, missing audio) are listed with a reason in ``df.attrs["skipped"]``: a list of ``(path, reason)``.

``write_manifest`` / ``load_manifest`` store a manifest as CSV; ``RECIPES`` maps corpus names to recipes (the
``python -m finetune.prepare`` command line uses it).
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from avpretext.common.io import write_atomic

MANIFEST_COLUMNS = ("path", "label", "speaker", "gender", "split", "fold")
DIMENSION_COLUMNS = ("arousal", "valence", "dominance")
SPLITS = ("train", "dev", "test")
GENDERS = ("female", "male")
# Speaker ids that say "we do not know who this is": they cannot be checked for split overlap (MSP-Podcast
# puts its unidentified speakers in every partition).
UNKNOWN_SPEAKERS = frozenset({"", "unknown"})

# Every container soundfile reads and seeks (avpretext.common.audio.read_audio seeks): Opus/Vorbis in Ogg
# included, as corpora redistributed at low bit rates (the shared BAVED copy) come that way.
AUDIO_PATTERNS = ("**/*.wav", "**/*.flac", "**/*.opus", "**/*.ogg")

RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
                    "07": "disgust", "08": "surprised"}
CREMA_D_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral",
                    "SAD": "sad"}
# "exc" (excited) is merged into happy, as in most IEMOCAP SER work. "xxx" (no majority) has no class.
IEMOCAP_EMOTIONS = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad",
                    "fru": "frustrated", "sur": "surprised", "fea": "fearful", "dis": "disgust", "oth": "other"}
MSP_PODCAST_EMOTIONS = {"A": "angry", "S": "sad", "H": "happy", "U": "surprised", "F": "fearful", "D": "disgust",
                        "C": "contempt", "N": "neutral"}  # O (other) and X (no agreement) are dropped
MSP_PODCAST_SPLITS = {"Train": "train", "Development": "dev"}  # test sets: the test_sets option
EMODB_EMOTIONS = {"W": "angry", "L": "bored", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad",
                  "N": "neutral"}
# BAVED level digit -> arousal class (the corpus: 0 low, 1 normal or neutral, 2 high).
BAVED_LEVELS = {"0": "low", "1": "normal", "2": "high"}
BAVED_GENDERS = {"m": "male", "f": "female"}
EMODB_SPEAKERS = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male", "12": "male",
                  "13": "female", "14": "female", "15": "male", "16": "female"}

_GENDER_ALIASES = {"female": "female", "f": "female", "male": "male", "m": "male", "": "", "unknown": "",
                   "nan": ""}
_SPLIT_ALIASES = {"train": "train", "dev": "dev", "development": "dev", "validation": "dev", "valid": "dev",
                  "val": "dev", "test": "test", "": ""}


class _Skip(Exception):
    """A file or row that does not become a manifest row; the message is the reason."""


# --------------------------------------------------------------------------------------------------------------
# Shared machinery: find files, turn items into rows, build and validate the DataFrame.

def _root(root, looked_for: str) -> Path:
    """The corpus folder as an absolute path (symlinks kept: paths stay the ones the user knows)."""
    path = Path(os.path.abspath(os.fspath(root)))
    if not path.is_dir():
        raise ValueError(f"{path}: no such corpus folder (looked for {looked_for})")
    return path


def _find_files(root: Path, patterns: Sequence[str]) -> list[Path]:
    """Files under ``root`` matching any glob pattern, sorted; ValueError naming root and patterns if none."""
    found = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if not found:
        raise ValueError(f"{root}: no files matching {' or '.join(patterns)}")
    return found


def _row(path, label: str, speaker: str, gender: str = "", split: str = "", fold: int = -1, **dimensions) -> dict:
    return {"path": str(path), "label": label, "speaker": speaker, "gender": gender, "split": split, "fold": fold,
            **dimensions}


def _collect(items: Iterable, parse: Callable[[object], dict],
             path_of: Callable[[object], str] = str) -> tuple[list[dict], list[tuple[str, str]]]:
    """``parse`` each item into a row; items it rejects with ``_Skip`` are kept as ``(path, reason)``."""
    rows, skipped = [], []
    for item in items:
        try:
            rows.append(parse(item))
        except _Skip as why:
            skipped.append((path_of(item), str(why)))
    return rows, skipped


def _build_manifest(rows: list[dict], skipped: list[tuple[str, str]], source, looked_for: str) -> pd.DataFrame:
    """The manifest DataFrame (validated, sorted by path) with ``attrs["skipped"]``."""
    if not rows:
        examples = "; ".join(f"{Path(p).name}: {reason}" for p, reason in skipped[:3])
        raise ValueError(f"{source}: no usable files matching {looked_for} ({len(skipped)} skipped"
                         + (f", e.g. {examples})" if examples else ")"))
    df = _validate(pd.DataFrame(rows), source).sort_values("path", kind="stable").reset_index(drop=True)
    df.attrs["skipped"] = sorted(skipped)
    return df


def _manifest_from_files(root, patterns: Sequence[str], parse: Callable[[Path], dict]) -> pd.DataFrame:
    """The common recipe: find files by pattern, parse each name, build the manifest."""
    root = _root(root, " or ".join(patterns))
    rows, skipped = _collect(_find_files(root, patterns), parse)
    return _build_manifest(rows, skipped, root, " or ".join(patterns))


def _gender(value) -> str:
    """'Female'/'F'/'male'/... -> 'female'/'male'; unknown -> ''. Anything else is returned lower-cased so that
    validation reports it."""
    text = str(value).strip().lower()
    return _GENDER_ALIASES.get(text, text)


def _fold(value) -> int:
    text = str(value).strip()
    if text in ("", "nan"):
        return -1
    number = float(text)  # "3" and "3.0" (a CSV written from a float column) are both fold 3
    if not number.is_integer():
        raise ValueError(f"fold {text!r} is not an integer")
    return int(number)


def _validate(df: pd.DataFrame, source) -> pd.DataFrame:
    """The manifest contract: required columns, types and values; returns the canonical columns only."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; available columns: {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{source}: the manifest has no rows")
    columns = list(MANIFEST_COLUMNS) + [c for c in DIMENSION_COLUMNS if c in df.columns]
    out = df[columns].copy()
    for column in ("path", "label", "speaker", "gender", "split"):
        out[column] = out[column].fillna("").astype(str)
    for column in ("path", "label"):
        empty = int((out[column].str.strip() == "").sum())
        if empty:
            raise ValueError(f"{source}: {empty} row(s) with an empty {column!r}")
    for column, allowed in (("gender", ("", *GENDERS)), ("split", ("", *SPLITS))):
        bad = sorted(set(out[column]) - set(allowed))
        if bad:
            raise ValueError(f"{source}: unknown {column} value(s) {bad}; expected one of {list(allowed)}")
    try:
        out["fold"] = out["fold"].map(_fold).astype(int)
        for column in DIMENSION_COLUMNS:
            if column in out:
                out[column] = pd.to_numeric(out[column], errors="raise").astype(float)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{source}: {err}") from None
    try:
        check_speaker_disjoint(out)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    return out


def check_speaker_disjoint(df: pd.DataFrame) -> None:
    """Refuse a manifest whose train/dev/test splits share a speaker (a speaker-dependent test set flatters).

    Rows with split "" and unknown speakers ("" or "unknown") are not checked. Raises ValueError listing each
    offending speaker with the splits it appears in.
    """
    labelled = df[(df["split"] != "") & ~df["speaker"].isin(UNKNOWN_SPEAKERS)]
    splits_of = labelled.groupby("speaker")["split"].unique()
    overlap = splits_of[splits_of.map(len) > 1]
    if len(overlap):
        listed = ", ".join(f"{speaker} ({'/'.join(sorted(splits))})" for speaker, splits in overlap.items())
        raise ValueError(f"{len(overlap)} speaker(s) in more than one split (splits must be speaker-disjoint): "
                         f"{listed}")


# --------------------------------------------------------------------------------------------------------------
# Recipes.

_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def _parse_ravdess(path: Path) -> dict:
    match = _RAVDESS_NAME.match(path.stem)
    if not match:
        raise _Skip("name is not MM-VV-EE-II-SS-RR-AA")
    modality, channel, emotion, _intensity, _statement, _repetition, actor = match.groups()
    if modality != "03":
        raise _Skip(f"modality {modality} is not audio-only (03)")
    if channel != "01":
        raise _Skip(f"vocal channel {channel} is not speech (01); song is not used")
    if emotion not in RAVDESS_EMOTIONS:
        raise _Skip(f"unknown emotion code {emotion}")
    if actor == "00":
        raise _Skip("actor 00")
    return _row(path, RAVDESS_EMOTIONS[emotion], actor, "male" if int(actor) % 2 else "female")


def prepare_ravdess(root) -> pd.DataFrame:
    """RAVDESS speech: ``03-01-EE-II-SS-RR-AA.<wav|flac|opus|ogg>`` anywhere under ``root`` (Actor_NN folders).

    EE is the emotion (01 neutral ... 08 surprised), AA the actor: speaker "01".."24", odd actors male, even
    female. Song files (vocal channel 02) are skipped. No fixed partition: split "" and fold -1.
    """
    return _manifest_from_files(root, AUDIO_PATTERNS, _parse_ravdess)


def _split_speakers(gender_of: Mapping[str, str], dev_fraction: float, test_fraction: float,
                    seed: int) -> dict[str, str]:
    """A seeded, deterministic speaker -> split assignment, stratified by gender.

    Within each gender group ("" when unknown), the sorted speakers are shuffled by one
    ``numpy.random.default_rng(seed)``; the first ``round(test_fraction * n)`` go to test, the next
    ``round(dev_fraction * n)`` to dev, the rest to train (halves round up).
    """
    if not (0 <= dev_fraction < 1 and 0 <= test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise ValueError(f"dev_fraction={dev_fraction} and test_fraction={test_fraction}: each must be in [0, 1) "
                         "and their sum below 1")
    groups: dict[str, list[str]] = defaultdict(list)
    for speaker, gender in gender_of.items():
        groups[gender].append(speaker)
    rng = np.random.default_rng(seed)
    split_of = {}
    for gender in sorted(groups):
        speakers = [str(s) for s in rng.permutation(sorted(groups[gender]))]
        n_test = int(test_fraction * len(speakers) + 0.5)
        n_dev = int(dev_fraction * len(speakers) + 0.5)
        for i, speaker in enumerate(speakers):
            split_of[speaker] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    return split_of


def _crema_d_genders(root: Path) -> dict[str, str]:
    """ActorID -> gender from ``VideoDemographics.csv`` in root; {} when the file is absent."""
    demographics = root / "VideoDemographics.csv"
    if not demographics.is_file():
        return {}
    table = pd.read_csv(demographics, dtype=str, keep_default_na=False)
    missing = [c for c in ("ActorID", "Sex") if c not in table.columns]
    if missing:
        raise ValueError(f"{demographics}: missing column(s) {missing}; available columns: {list(table.columns)}")
    return {actor.strip(): _gender(sex) for actor, sex in zip(table["ActorID"], table["Sex"])}


_CREMA_D_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def prepare_crema_d(root, dev_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """CREMA-D: ``AudioWAV/SSSS_TTT_EEE_LL.wav`` (speaker, sentence, emotion, level) under ``root``.

    Emotions ANG/DIS/FEA/HAP/NEU/SAD. Gender from ``root/VideoDemographics.csv`` (ActorID, Sex) when present,
    else "". CREMA-D has no official partition, so speakers are assigned to train/dev/test by
    ``_split_speakers`` (fractions of speakers, seeded, gender-stratified); fold -1.
    """
    patterns = ("**/*.wav",)
    root = _root(root, patterns[0])
    gender_of = _crema_d_genders(root)

    def parse(path: Path) -> dict:
        match = _CREMA_D_NAME.match(path.stem)
        if not match:
            raise _Skip("name is not SSSS_TTT_EEE_LL")
        speaker, _sentence, emotion, _level = match.groups()
        if emotion not in CREMA_D_EMOTIONS:
            raise _Skip(f"unknown emotion code {emotion}")
        return _row(path, CREMA_D_EMOTIONS[emotion], speaker, gender_of.get(speaker, ""))

    rows, skipped = _collect(_find_files(root, patterns), parse)
    split_of = _split_speakers({row["speaker"]: row["gender"] for row in rows}, dev_fraction, test_fraction, seed)
    for row in rows:
        row["split"] = split_of[row["speaker"]]
    return _build_manifest(rows, skipped, root, patterns[0])


_IEMOCAP_LABEL_LINE = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(\S+)\t(\S+)\t")
_IEMOCAP_UTTERANCE = re.compile(r"^Ses(\d{2})[FM]_\S+_([FM])\d{3}$")
_IEMOCAP_LABELS = "Session*/dialog/EmoEvaluation/*.txt"


def _iemocap_labels(root: Path) -> dict[str, str]:
    """Utterance id -> categorical code (neu, hap, ...) from every dialog's EmoEvaluation file."""
    code_of = {}
    for text_file in sorted(root.glob(_IEMOCAP_LABELS)):
        # errors="replace": macOS "._" resource-fork files in some copies are binary; their lines never match.
        for line in text_file.read_text(errors="replace").splitlines():
            match = _IEMOCAP_LABEL_LINE.match(line)
            if match:
                code_of[match.group(1)] = match.group(2)
    if not code_of:
        raise ValueError(f"{root}: no labels found in {_IEMOCAP_LABELS}")
    return code_of


def prepare_iemocap(root, classes: Sequence[str] = ("neutral", "happy", "angry", "sad")) -> pd.DataFrame:
    """IEMOCAP: ``Session{1..5}/sentences/wav/<dialog>/<utterance>.wav`` with labels from
    ``Session{N}/dialog/EmoEvaluation/<dialog>.txt``.

    Codes map to ``IEMOCAP_EMOTIONS`` (exc is merged into happy); only ``classes`` are kept, xxx (no majority)
    never. The speaker is the session plus the utterance speaker's letter (``Ses01F_impro01_M012`` ->
    "Ses01M", male): each session has one female and one male actor. fold = session number, for
    leave-one-session-out; split "".
    """
    known = sorted(set(IEMOCAP_EMOTIONS.values()))
    unknown = sorted(set(classes) - set(known))
    if unknown:
        raise ValueError(f"IEMOCAP classes {unknown} unknown; choose from {known}")
    patterns = ("Session*/sentences/wav/**/*.wav",)
    root = _root(root, f"{patterns[0]} and {_IEMOCAP_LABELS}")
    code_of = _iemocap_labels(root)

    def parse(path: Path) -> dict:
        match = _IEMOCAP_UTTERANCE.match(path.stem)
        if not match:
            raise _Skip("name is not SesNN[FM]_<dialog>_[FM]NNN")
        if path.stem not in code_of:
            raise _Skip("no label in EmoEvaluation")
        code = code_of[path.stem]
        label = IEMOCAP_EMOTIONS.get(code)
        if label not in classes:
            raise _Skip(f"label {code} not in classes")
        session, letter = match.groups()
        return _row(path, label, f"Ses{session}{letter}", "female" if letter == "F" else "male", fold=int(session))

    rows, skipped = _collect(_find_files(root, patterns), parse)
    return _build_manifest(rows, skipped, root, patterns[0])


_MSP_PODCAST_COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")


def prepare_msp_podcast(root, test_sets: Sequence[str] = ("Test1",)) -> pd.DataFrame:
    """MSP-Podcast: ``Labels/labels_consensus.csv`` and audio in ``Audios/<FileName>``.

    EmoClass maps to ``MSP_PODCAST_EMOTIONS`` (O other and X no agreement are dropped). Split_Set Train ->
    train, Development -> dev, the ``test_sets`` -> test; other test sets are dropped. Speaker is SpkrID as a
    string ("Unknown" -> "unknown", kept); arousal/valence/dominance are EmoAct/EmoVal/EmoDom. Rows whose audio
    file is missing are skipped.
    """
    root = _root(root, "Labels/labels_consensus.csv and Audios/")
    labels = root / "Labels" / "labels_consensus.csv"
    if not labels.is_file():
        raise ValueError(f"{root}: no label file Labels/labels_consensus.csv")
    table = pd.read_csv(labels, dtype=str, keep_default_na=False)
    missing = [c for c in _MSP_PODCAST_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{labels}: missing column(s) {missing}; available columns: {list(table.columns)}")
    split_of = {**MSP_PODCAST_SPLITS, **{name: "test" for name in test_sets}}
    audio = root / "Audios"

    def parse(record: dict) -> dict:
        path = audio / record["FileName"]
        if record["EmoClass"] not in MSP_PODCAST_EMOTIONS:
            raise _Skip(f"EmoClass {record['EmoClass']} has no category")
        if record["Split_Set"] not in split_of:
            raise _Skip(f"Split_Set {record['Split_Set']} not used")
        if not path.is_file():
            raise _Skip("audio file missing")
        speaker = record["SpkrID"].strip()
        return _row(path, MSP_PODCAST_EMOTIONS[record["EmoClass"]],
                    "unknown" if speaker.lower() in UNKNOWN_SPEAKERS else speaker, _gender(record["Gender"]),
                    split_of[record["Split_Set"]], arousal=record["EmoAct"], valence=record["EmoVal"],
                    dominance=record["EmoDom"])

    rows, skipped = _collect(table.to_dict("records"), parse, path_of=lambda r: str(audio / r["FileName"]))
    return _build_manifest(rows, skipped, labels, "Audios/<FileName>")


_EMODB_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z])$")


def _parse_emodb(path: Path) -> dict:
    match = _EMODB_NAME.match(path.stem)
    if not match:
        raise _Skip("name is not SSTTTEV (e.g. 03a01Fa)")
    speaker, _text, emotion, _version = match.groups()
    if speaker not in EMODB_SPEAKERS:
        raise _Skip(f"unknown speaker {speaker}")
    if emotion not in EMODB_EMOTIONS:
        raise _Skip(f"unknown emotion letter {emotion}")
    return _row(path, EMODB_EMOTIONS[emotion], speaker, EMODB_SPEAKERS[speaker])


def prepare_emodb(root) -> pd.DataFrame:
    """Berlin EmoDB: ``wav/SSTTTEV.wav`` (speaker, text code, emotion letter, version), e.g. ``03a01Fa.wav``.

    Emotion letters are German initials (W Wut angry, L Langeweile bored, E Ekel disgust, A Angst fearful,
    F Freude happy, T Trauer sad, N neutral). Ten speakers with known genders; split "", fold -1.
    """
    return _manifest_from_files(root, AUDIO_PATTERNS, _parse_emodb)


_BAVED_NAME = re.compile(r"^(\d+)-([A-Za-z]+)-(\d+)-(\d+)-(\d+)-(\d+)$")


def _parse_baved(path: Path) -> dict:
    match = _BAVED_NAME.match(path.stem)
    if not match:
        raise _Skip("name is not SPEAKER-GENDER-AGE-WORD-LEVEL-RECORD (e.g. 0-m-21-0-1-105)")
    speaker, gender, _age, _word, level, _record = match.groups()
    if gender.lower() not in BAVED_GENDERS:
        raise _Skip(f"unknown gender {gender} (m or f)")
    if level not in BAVED_LEVELS:
        raise _Skip(f"unknown level {level} (0 low, 1 normal, 2 high)")
    # int() drops zero padding, so "07" and "7" (the corpus writes no padding) stay one speaker.
    return _row(path, BAVED_LEVELS[level], str(int(speaker)), BAVED_GENDERS[gender.lower()])


def prepare_baved(root) -> pd.DataFrame:
    """BAVED (Basic Arabic Vocal Emotions): ``SPEAKER-GENDER-AGE-WORD-LEVEL-RECORD.<ext>``, e.g.
    ``0-m-21-0-1-105.opus``, anywhere under ``root`` (wav, flac, opus or ogg).

    The label is the arousal level as a class: 0 low, 1 normal, 2 high. Speaker "0", "1", ... (ids unique
    within the corpus), gender m/f from the name. No fixed partition: split "" and fold -1, so the
    speaker-fold protocol applies as for RAVDESS.
    """
    return _manifest_from_files(root, AUDIO_PATTERNS, _parse_baved)


def prepare_csv(path, path_column: str = "path", label_column: str = "label", speaker_column: str = "speaker",
                gender_column: str | None = None, split_column: str | None = None,
                fold_column: str | None = None) -> pd.DataFrame:
    """Any corpus described by a CSV: one row per file, with (at least) path, label and speaker columns.

    Relative paths are resolved against the CSV's folder. Labels are lower-cased; rows with an empty label are
    dropped. Gender accepts female/male/f/m (any case), split train/dev/test (dev also as development,
    validation, valid, val); fold must be an integer. The audio files are not opened.
    """
    csv = Path(os.path.abspath(os.fspath(path)))
    if not csv.is_file():
        raise ValueError(f"{csv}: no such CSV file")
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    wanted = {"path": path_column, "label": label_column, "speaker": speaker_column, "gender": gender_column,
              "split": split_column, "fold": fold_column}
    missing = [name for name in wanted.values() if name is not None and name not in table.columns]
    if missing:
        raise ValueError(f"{csv}: missing column(s) {missing}; available columns: {list(table.columns)}")

    def value(record: dict, key: str, default=""):
        return record[wanted[key]] if wanted[key] is not None else default

    def parse(record: dict) -> dict:
        label = record[label_column].strip().lower()
        if not label:
            raise _Skip("empty label")
        split = value(record, "split").strip().lower()
        return _row(_resolve(csv.parent, record[path_column]), label, record[speaker_column].strip(),
                    _gender(value(record, "gender")), _SPLIT_ALIASES.get(split, split), value(record, "fold", -1))

    rows, skipped = _collect(table.to_dict("records"), parse,
                             path_of=lambda r: _resolve(csv.parent, r[path_column]))
    return _build_manifest(rows, skipped, csv, f"the {path_column!r} column")


def _resolve(folder: Path, path: str) -> str:
    """``path`` made absolute, relative paths taken from ``folder``."""
    return os.path.abspath(os.path.join(folder, path.strip()))


RECIPES: dict[str, Callable[..., pd.DataFrame]] = {
    "ravdess": prepare_ravdess,
    "crema-d": prepare_crema_d,
    "iemocap": prepare_iemocap,
    "msp-podcast": prepare_msp_podcast,
    "emodb": prepare_emodb,
    "baved": prepare_baved,
    "csv": prepare_csv,
}


# --------------------------------------------------------------------------------------------------------------
# Manifest files.

def write_manifest(df: pd.DataFrame, path) -> Path:
    """Write a manifest as CSV (the manifest columns only), atomically (:func:`avpretext.common.io.write_atomic`),
    so a reader never sees half a file. Returns the path written."""
    path = Path(path)
    df = _validate(df, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: df.to_csv(tmp, index=False))
    return path


def load_manifest(path) -> pd.DataFrame:
    """Read a manifest CSV: every column as text (speaker "01" stays "01"), fold as int, dimensions as float,
    relative paths resolved against the manifest's folder. ValueError naming the file when it is missing,
    empty, lacks a column, has bad values or overlapping splits."""
    path = Path(os.path.abspath(os.fspath(path)))
    if not path.is_file():
        raise ValueError(f"{path}: no such manifest")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the manifest is empty") from None
    df = _validate(df, path)
    df["path"] = [_resolve(path.parent, p) for p in df["path"]]
    return df
