"""Corpus recipes: the real RAVDESS, and tiny trees that follow each other corpus's naming convention."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from finetune import prepare
from finetune.recipes import (MANIFEST_COLUMNS, RECIPES, check_speaker_disjoint, load_manifest, prepare_crema_d,
                              prepare_baved, prepare_csv, prepare_emodb, prepare_iemocap, prepare_msp_podcast,
                              prepare_ravdess, write_manifest)
from tests.conftest import REPO, SHARED

RAVDESS = SHARED / "data" / "ravdess"
BAVED = SHARED / "data" / "speech_unlabelled" / "baved"


def _wav(path: Path) -> Path:
    """0.1 s of noise at 16 kHz: a real audio file, cheap to write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(0).standard_normal(1600) * 0.1, 16000)
    return path


def _rows(df: pd.DataFrame, *columns: str) -> dict[str, tuple]:
    """File name -> the chosen columns, for exact comparisons."""
    return {Path(p).name: tuple(r) for p, r in zip(df["path"], df[list(columns)].itertuples(index=False))}


def _skipped_names(df: pd.DataFrame) -> dict[str, str]:
    return {Path(p).name: reason for p, reason in df.attrs["skipped"]}


# ---------------------------------------------------------------------------------------------------- RAVDESS

def test_ravdess_real_corpus():
    if not RAVDESS.exists():
        pytest.skip(f"the real RAVDESS corpus is not at {RAVDESS} (the shared data folder sits beside the "
                    "repository in CI; a fresh clone does not have it)")
    df = prepare_ravdess(RAVDESS)
    assert list(df.columns) == list(MANIFEST_COLUMNS)
    assert len(df) == 1440 and df.attrs["skipped"] == []
    assert df["label"].value_counts().to_dict() == {"neutral": 96, **{c: 192 for c in (
        "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")}}
    assert sorted(df["speaker"].unique()) == [f"{i:02d}" for i in range(1, 25)]
    assert df.groupby("gender")["speaker"].nunique().to_dict() == {"female": 12, "male": 12}
    assert (df["split"] == "").all() and (df["fold"] == -1).all()
    assert df["path"].is_monotonic_increasing and all(Path(p).is_absolute() for p in df["path"])

    # The corpus's own manifest.csv (not used by the recipe) names emotions, speakers and genders the same way.
    reference = pd.read_csv(RAVDESS / "manifest.csv", dtype=str)
    reference["path"] = [str(RAVDESS / p) for p in reference["path"]]
    merged = df.merge(reference, on="path", suffixes=("", "_ref"), validate="one_to_one")
    assert len(merged) == 1440
    assert (merged["label"] == merged["emotion"]).all()
    assert (merged["speaker"] == merged["speaker_ref"]).all() and (merged["gender"] == merged["gender_ref"]).all()


def test_ravdess_names_song_and_other_modalities_are_skipped(tmp_path):
    _wav(tmp_path / "Actor_01" / "03-01-05-02-01-01-01.wav")
    _wav(tmp_path / "Actor_12" / "03-01-08-01-02-02-12.flac")
    _wav(tmp_path / "Actor_01" / "03-02-05-01-01-01-01.wav")  # song
    _wav(tmp_path / "Actor_01" / "01-01-05-01-01-01-01.wav")  # audio-video modality
    _wav(tmp_path / "Actor_01" / "03-01-09-01-01-01-01.wav")  # no emotion 09
    _wav(tmp_path / "Actor_01" / "take 1.wav")
    df = prepare_ravdess(tmp_path)
    assert _rows(df, "label", "speaker", "gender") == {"03-01-05-02-01-01-01.wav": ("angry", "01", "male"),
                                                       "03-01-08-01-02-02-12.flac": ("surprised", "12", "female")}
    skipped = _skipped_names(df)
    assert set(skipped) == {"03-02-05-01-01-01-01.wav", "01-01-05-01-01-01-01.wav", "03-01-09-01-01-01-01.wav",
                            "take 1.wav"}
    assert "song" in skipped["03-02-05-01-01-01-01.wav"] and "MM-VV-EE" in skipped["take 1.wav"]


# ---------------------------------------------------------------------------------------------------- CREMA-D

@pytest.fixture()
def crema_d(tmp_path) -> Path:
    """Ten speakers 1001..1010 (odd male, even female), one or two files each, plus two badly named files."""
    root = tmp_path / "crema"
    codes = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
    for i, speaker in enumerate(range(1001, 1011)):
        _wav(root / "AudioWAV" / f"{speaker}_DFA_{codes[i % 6]}_XX.wav")
        _wav(root / "AudioWAV" / f"{speaker}_IEO_{codes[(i + 1) % 6]}_HI.wav")
    _wav(root / "AudioWAV" / "1001_DFA_BOR_XX.wav")
    _wav(root / "AudioWAV" / "readme.wav")
    demographics = pd.DataFrame({"ActorID": range(1001, 1011), "Age": 30,
                                 "Sex": ["Male" if s % 2 else "Female" for s in range(1001, 1011)],
                                 "Race": "", "Ethnicity": ""})
    demographics.to_csv(root / "VideoDemographics.csv", index=False)
    return root


def _speakers_by_split(df: pd.DataFrame) -> dict[str, set[str]]:
    return {split: set(group["speaker"]) for split, group in df.groupby("split")}


def test_crema_d_labels_genders_and_a_seeded_gender_stratified_speaker_split(crema_d):
    df = prepare_crema_d(crema_d)
    assert len(df) == 20 and set(_skipped_names(df)) == {"1001_DFA_BOR_XX.wav", "readme.wav"}
    rows = _rows(df, "label", "speaker", "gender")
    assert rows["1001_DFA_ANG_XX.wav"] == ("angry", "1001", "male")
    assert rows["1002_DFA_DIS_XX.wav"] == ("disgust", "1002", "female")
    assert rows["1006_IEO_ANG_HI.wav"] == ("angry", "1006", "female")
    assert set(df["label"]) == {"angry", "disgust", "fearful", "happy", "neutral", "sad"}
    assert (df["fold"] == -1).all()

    by_split = _speakers_by_split(df)
    assert set(by_split) == {"train", "dev", "test"}
    assert not (by_split["train"] & by_split["dev"] or by_split["train"] & by_split["test"]
                or by_split["dev"] & by_split["test"])
    gender = dict(zip(df["speaker"], df["gender"]))
    # 5 female and 5 male speakers; per gender round(0.2 * 5) = 1 test, round(0.1 * 5) = 1 dev, 3 train.
    for split, n in (("test", 1), ("dev", 1), ("train", 3)):
        assert sorted(gender[s] for s in by_split[split]) == ["female"] * n + ["male"] * n, split

    assert prepare_crema_d(crema_d).equals(df)  # deterministic
    test_sets = {frozenset(_speakers_by_split(prepare_crema_d(crema_d, seed=seed))["test"]) for seed in range(6)}
    assert len(test_sets) > 1  # the seed matters


def test_crema_d_without_demographics_splits_all_speakers_together(crema_d):
    (crema_d / "VideoDemographics.csv").unlink()
    df = prepare_crema_d(crema_d, dev_fraction=0.15, test_fraction=0.25, seed=5)
    assert set(df["gender"]) == {""}
    # 10 speakers in one group: 2.5 -> 3 test, 1.5 -> 2 dev (halves round up), the other 5 train.
    assert {split: len(s) for split, s in _speakers_by_split(df).items()} == {"test": 3, "dev": 2, "train": 5}
    with pytest.raises(ValueError, match="sum below 1"):
        prepare_crema_d(crema_d, dev_fraction=0.5, test_fraction=0.5)


def test_crema_d_demographics_without_the_sex_column_is_refused(crema_d):
    demographics = crema_d / "VideoDemographics.csv"
    pd.read_csv(demographics).drop(columns="Sex").to_csv(demographics, index=False)
    with pytest.raises(ValueError, match=r"VideoDemographics.csv: missing column\(s\) \['Sex'\]; available "
                                         r"columns: \['ActorID', 'Age', 'Race', 'Ethnicity'\]"):
        prepare_crema_d(crema_d)


# ---------------------------------------------------------------------------------------------------- IEMOCAP

def _iemocap_session(root: Path, session: int, dialog: str, labels: dict[str, str]) -> None:
    evaluation = root / f"Session{session}" / "dialog" / "EmoEvaluation"
    evaluation.mkdir(parents=True, exist_ok=True)
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for i, (utterance, code) in enumerate(labels.items()):
        lines += [f"[{i * 2 + 0.29:.4f} - {i * 2 + 1.5:.4f}]\t{utterance}\t{code}\t[2.5000, 2.5000, 2.5000]",
                  "C-E2:\tNeutral;\t()", "A-E3:\tval 3; act 2; dom  2;\t()", ""]
    (evaluation / f"{dialog}.txt").write_text("\n".join(lines))
    for utterance in labels:
        _wav(root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utterance}.wav")


@pytest.fixture()
def iemocap(tmp_path) -> Path:
    root = tmp_path / "IEMOCAP_full_release"
    _iemocap_session(root, 1, "Ses01F_impro01", {"Ses01F_impro01_F000": "neu", "Ses01F_impro01_M001": "exc",
                                                 "Ses01F_impro01_F002": "fru", "Ses01F_impro01_M003": "xxx"})
    _iemocap_session(root, 2, "Ses02M_script01_1", {"Ses02M_script01_1_M000": "ang", "Ses02M_script01_1_F001": "sad",
                                                    "Ses02M_script01_1_M002": "hap"})
    _wav(root / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F999.wav")  # no label
    _wav(root / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "._Ses01F_impro01_F000.wav")  # macOS litter
    return root


def test_iemocap_four_classes_merge_excited_into_happy_and_fold_by_session(iemocap):
    df = prepare_iemocap(iemocap)
    assert _rows(df, "label", "speaker", "gender", "fold", "split") == {
        "Ses01F_impro01_F000.wav": ("neutral", "Ses01F", "female", 1, ""),
        "Ses01F_impro01_M001.wav": ("happy", "Ses01M", "male", 1, ""),
        "Ses02M_script01_1_M000.wav": ("angry", "Ses02M", "male", 2, ""),
        "Ses02M_script01_1_F001.wav": ("sad", "Ses02F", "female", 2, ""),
        "Ses02M_script01_1_M002.wav": ("happy", "Ses02M", "male", 2, ""),
    }
    assert df["fold"].dtype.kind == "i"
    skipped = _skipped_names(df)
    assert set(skipped) == {"Ses01F_impro01_F002.wav", "Ses01F_impro01_M003.wav", "Ses01F_impro01_F999.wav",
                            "._Ses01F_impro01_F000.wav"}
    assert skipped["Ses01F_impro01_F999.wav"] == "no label in EmoEvaluation"

    wider = prepare_iemocap(iemocap, classes=("neutral", "happy", "angry", "sad", "frustrated"))
    assert _rows(wider, "label")["Ses01F_impro01_F002.wav"] == ("frustrated",)
    assert len(wider) == 6  # xxx has no class
    with pytest.raises(ValueError, match="'excitement'.*unknown"):
        prepare_iemocap(iemocap, classes=("excitement",))


# ---------------------------------------------------------------------------------------------------- MSP-Podcast

@pytest.fixture()
def msp_podcast(tmp_path) -> Path:
    root = tmp_path / "MSP-Podcast"
    rows = [  # FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set
        ("MSP-PODCAST_0001_0001.wav", "A", 6.2, 2.0, 5.4, "127", "Male", "Train"),
        ("MSP-PODCAST_0001_0002.wav", "S", 2.0, 2.6, 3.0, "127", "Male", "Train"),
        ("MSP-PODCAST_0002_0001.wav", "H", 4.8, 6.0, 4.2, "1", "Female", "Development"),
        ("MSP-PODCAST_0003_0001.wav", "N", 4.0, 4.0, 4.0, "Unknown", "Unknown", "Test1"),
        ("MSP-PODCAST_0003_0002.wav", "D", 4.4, 2.2, 4.6, "Unknown", "Unknown", "Train"),
        ("MSP-PODCAST_0004_0001.wav", "O", 3.0, 3.0, 3.0, "9", "Male", "Train"),
        ("MSP-PODCAST_0004_0002.wav", "X", 3.0, 3.0, 3.0, "9", "Male", "Train"),
        ("MSP-PODCAST_0005_0001.wav", "U", 5.6, 5.0, 4.0, "50", "Female", "Test2"),
        ("MSP-PODCAST_0005_0002.wav", "C", 4.2, 3.0, 5.0, "50", "Female", "Test1"),
        ("MSP-PODCAST_0006_0001.wav", "F", 5.0, 2.0, 3.0, "3", "Male", "Train"),  # audio missing
    ]
    table = pd.DataFrame(rows, columns=["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender",
                                        "Split_Set"])
    (root / "Labels").mkdir(parents=True)
    table.to_csv(root / "Labels" / "labels_consensus.csv", index=False)
    for name in table["FileName"][:-1]:
        _wav(root / "Audios" / name)
    return root


def test_msp_podcast_classes_splits_speakers_and_dimensions(msp_podcast):
    df = prepare_msp_podcast(msp_podcast)
    assert list(df.columns) == [*MANIFEST_COLUMNS, "arousal", "valence", "dominance"]
    assert _rows(df, "label", "speaker", "gender", "split") == {
        "MSP-PODCAST_0001_0001.wav": ("angry", "127", "male", "train"),
        "MSP-PODCAST_0001_0002.wav": ("sad", "127", "male", "train"),
        "MSP-PODCAST_0002_0001.wav": ("happy", "1", "female", "dev"),
        "MSP-PODCAST_0003_0001.wav": ("neutral", "unknown", "", "test"),
        "MSP-PODCAST_0003_0002.wav": ("disgust", "unknown", "", "train"),  # unknown speakers are not checked
        "MSP-PODCAST_0005_0002.wav": ("contempt", "50", "female", "test"),
    }
    first = df.iloc[0]
    assert (first["arousal"], first["valence"], first["dominance"]) == (6.2, 2.0, 5.4)
    assert df["arousal"].dtype == float
    skipped = _skipped_names(df)
    assert set(skipped) == {"MSP-PODCAST_0004_0001.wav", "MSP-PODCAST_0004_0002.wav", "MSP-PODCAST_0005_0001.wav",
                            "MSP-PODCAST_0006_0001.wav"}
    assert "Test2" in skipped["MSP-PODCAST_0005_0001.wav"] and skipped["MSP-PODCAST_0006_0001.wav"] == \
        "audio file missing"

    both = prepare_msp_podcast(msp_podcast, test_sets=("Test1", "Test2"))
    assert _rows(both, "label", "split")["MSP-PODCAST_0005_0001.wav"] == ("surprised", "test")


def test_msp_podcast_missing_label_file_or_column(tmp_path, msp_podcast):
    with pytest.raises(ValueError, match="Labels/labels_consensus.csv"):
        prepare_msp_podcast(tmp_path / "empty")
    labels = msp_podcast / "Labels" / "labels_consensus.csv"
    pd.read_csv(labels).drop(columns="Split_Set").to_csv(labels, index=False)
    with pytest.raises(ValueError, match=r"labels_consensus.csv: missing column\(s\) \['Split_Set'\]"):
        prepare_msp_podcast(msp_podcast)


# ---------------------------------------------------------------------------------------------------- EmoDB

def test_emodb_letters_speakers_and_genders(tmp_path):
    for name in ("03a01Wa", "08a02Fb", "16b10Lc", "10a04Ta", "99a01Na", "03a01Xa", "notes"):
        _wav(tmp_path / "wav" / f"{name}.wav")
    df = prepare_emodb(tmp_path)
    assert _rows(df, "label", "speaker", "gender", "split", "fold") == {
        "03a01Wa.wav": ("angry", "03", "male", "", -1), "08a02Fb.wav": ("happy", "08", "female", "", -1),
        "16b10Lc.wav": ("bored", "16", "female", "", -1), "10a04Ta.wav": ("sad", "10", "male", "", -1)}
    assert _skipped_names(df) == {"99a01Na.wav": "unknown speaker 99", "03a01Xa.wav": "unknown emotion letter X",
                                  "notes.wav": "name is not SSTTTEV (e.g. 03a01Fa)"}


# ---------------------------------------------------------------------------------------------------- BAVED

def test_baved_levels_speakers_genders_and_skips(tmp_path):
    for name in ("0-m-21-0-1-105.wav", "0-m-21-3-2-922.wav", "17-f-19-6-0-1700.wav", "59-F-22-2-2-33.wav",
                 "3-x-20-0-1-1.wav", "3-m-20-0-3-2.wav", "3-m-20-0.wav", "notes.wav"):
        _wav(tmp_path / name)
    _wav(tmp_path / "sub" / "4-f-30-1-0-7.wav").rename(tmp_path / "sub" / "4-f-30-1-0-7.flac")
    df = prepare_baved(tmp_path)
    assert _rows(df, "label", "speaker", "gender", "split", "fold") == {
        "0-m-21-0-1-105.wav": ("normal", "0", "male", "", -1),
        "0-m-21-3-2-922.wav": ("high", "0", "male", "", -1),
        "17-f-19-6-0-1700.wav": ("low", "17", "female", "", -1),
        "59-F-22-2-2-33.wav": ("high", "59", "female", "", -1),
        "4-f-30-1-0-7.flac": ("low", "4", "female", "", -1)}
    skipped = _skipped_names(df)
    assert skipped == {"3-x-20-0-1-1.wav": "unknown gender x (m or f)",
                       "3-m-20-0-3-2.wav": "unknown level 3 (0 low, 1 normal, 2 high)",
                       "3-m-20-0.wav": "name is not SPEAKER-GENDER-AGE-WORD-LEVEL-RECORD (e.g. 0-m-21-0-1-105)",
                       "notes.wav": "name is not SPEAKER-GENDER-AGE-WORD-LEVEL-RECORD (e.g. 0-m-21-0-1-105)"}


def test_baved_real_corpus_opus_files():
    if not BAVED.exists():
        pytest.skip(f"the real BAVED copy is not at {BAVED} (the shared data folder sits beside the repository "
                    "in CI; a fresh clone does not have it)")
    from avpretext.common.audio import read_audio

    df = prepare_baved(BAVED)
    # The facts of ../shared/data/README.md: 1,935 Opus files, 60 speaker ids, 44 male and 16 female.
    assert len(df) == 1935 and df.attrs["skipped"] == []
    assert all(p.endswith(".opus") for p in df["path"])
    assert df["speaker"].nunique() == 60
    assert df.groupby("gender")["speaker"].nunique().to_dict() == {"female": 16, "male": 44}
    assert df["label"].value_counts().to_dict() == {"high": 678, "normal": 672, "low": 585}
    assert (df["split"] == "").all() and (df["fold"] == -1).all()
    assert df.groupby("speaker")["gender"].nunique().max() == 1  # one gender per speaker id

    # Per-level counts agree with the folder's manifest.csv (never read by the recipe).
    reference = pd.read_csv(BAVED.parent / "manifest.csv", dtype=str)
    reference = reference[reference["corpus"] == "baved"].drop_duplicates("path")
    assert reference["label"].value_counts().to_dict() == df["label"].value_counts().to_dict()

    # Fine-tuning reads with seeking: a seeked read equals the same samples of a whole read.
    path = df["path"].iloc[0]
    whole = read_audio(path)
    np.testing.assert_array_equal(read_audio(path, 8000, 12000).numpy(), whole[8000:12000].numpy())
    assert sf.info(path).samplerate == 16000


def test_baved_folds_give_every_dev_part_every_arousal_level(tmp_path):
    """43 of BAVED's 60 speakers record one level only: two seeded dev speakers per fold left one fold's dev
    part all 'high' (dev UAR = recall of 'high'). The default protocol adds dev speakers until each level has 5
    dev rows; the test speakers stay the same."""
    if not BAVED.exists():
        pytest.skip(f"the real BAVED copy is not at {BAVED} (the shared data folder sits beside the repository "
                    "in CI; a fresh clone does not have it)")
    from finetune.config import FinetuneConfig
    from finetune.train import load_splits

    df = prepare_baved(BAVED)
    assert (df.groupby("speaker")["label"].nunique() == 1).sum() == 43
    df.to_csv(tmp_path / "baved.csv", index=False)
    settings = dict(manifest=str(tmp_path / "baved.csv"), protocol="folds", num_folds=4, dev_speakers=2)
    _, plain = load_splits(FinetuneConfig(**settings, dev_min_per_class=0))
    _, covered = load_splits(FinetuneConfig(**settings))
    assert min(s.dev["label"].nunique() for s in plain) == 1
    for before, after in zip(plain, covered):
        assert after.dev["label"].value_counts().min() >= 5 and after.dev["label"].nunique() == 3
        assert set(after.test["path"]) == set(before.test["path"])


# ---------------------------------------------------------------------------------------------------- all recipes

@pytest.mark.parametrize("corpus", sorted(set(RECIPES) - {"csv"}))
def test_missing_empty_or_unusable_roots_are_refused(tmp_path, corpus):
    recipe = RECIPES[corpus]
    with pytest.raises(ValueError, match=r"nowhere: no such corpus folder \(looked for .+\)"):
        recipe(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no (files matching|label)"):
        recipe(tmp_path / "empty")


def test_a_folder_of_badly_named_files_is_refused_with_examples(tmp_path):
    _wav(tmp_path / "a.wav"), _wav(tmp_path / "b.wav")
    with pytest.raises(ValueError, match=r"no usable files .* \(2 skipped, e.g. a.wav: name is not"):
        prepare_emodb(tmp_path)


# ---------------------------------------------------------------------------------------------------- generic CSV

def test_csv_recipe_maps_columns_and_resolves_relative_paths(tmp_path):
    (tmp_path / "lists").mkdir()
    csv = tmp_path / "lists" / "corpus.csv"
    csv.write_text("file,emotion,spk,sex,part,cv\n"
                   "audio/x.wav,Happy,01,F,train,1\n"
                   "/data/y.wav,sad,02,male,validation,2\n"
                   "z.wav,,03,,test,\n")
    df = prepare_csv(csv, path_column="file", label_column="emotion", speaker_column="spk", gender_column="sex",
                     split_column="part", fold_column="cv")
    assert df.to_dict("records") == [
        {"path": "/data/y.wav", "label": "sad", "speaker": "02", "gender": "male", "split": "dev", "fold": 2},
        {"path": str(tmp_path / "lists" / "audio" / "x.wav"), "label": "happy", "speaker": "01",
         "gender": "female", "split": "train", "fold": 1}]
    assert df.attrs["skipped"] == [(str(tmp_path / "lists" / "z.wav"), "empty label")]

    with pytest.raises(ValueError) as err:
        prepare_csv(csv, speaker_column="spk")
    message = str(err.value)
    assert str(csv) in message and "['path', 'label']" in message
    assert "available columns: ['file', 'emotion', 'spk', 'sex', 'part', 'cv']" in message


def test_overlapping_splits_are_refused(tmp_path):
    df = pd.DataFrame({"path": [f"/a/{i}.wav" for i in range(6)], "label": "sad",
                       "speaker": ["01", "01", "02", "unknown", "unknown", "03"], "gender": "",
                       "split": ["train", "test", "train", "train", "test", "dev"], "fold": -1})
    with pytest.raises(ValueError, match=r"^1 speaker\(s\) in more than one split .*: 01 \(test/train\)$"):
        check_speaker_disjoint(df)
    check_speaker_disjoint(df[df["speaker"] != "01"])  # unknown speakers cannot be checked, so pass

    csv = tmp_path / "overlap.csv"
    df.to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"overlap.csv: .*01 \(test/train\)"):
        prepare_csv(csv, split_column="split")


# ---------------------------------------------------------------------------------------------------- manifest files

def test_manifest_round_trip_keeps_speaker_strings_and_resolves_relative_paths(tmp_path):
    df = pd.DataFrame({"path": ["/a/1.wav", "/a/2.wav"], "label": ["neutral", "sad"], "speaker": ["01", "10"],
                       "gender": ["male", ""], "split": ["", ""], "fold": [-1, 3]})
    out = write_manifest(df, tmp_path / "sub" / "manifest.csv")
    assert [p.name for p in out.parent.iterdir()] == ["manifest.csv"]  # no temporary file left behind
    loaded = load_manifest(out)
    pd.testing.assert_frame_equal(loaded, df, check_dtype=False)
    assert loaded["speaker"].tolist() == ["01", "10"] and loaded["fold"].dtype.kind == "i"

    relative = tmp_path / "rel.csv"
    relative.write_text("path,label,speaker,gender,split,fold,arousal\nclips/a.wav,happy,7,female,train,-1,3.5\n")
    row = load_manifest(relative).iloc[0]
    assert row["path"] == str(tmp_path / "clips" / "a.wav") and row["arousal"] == 3.5 and row["speaker"] == "7"


@pytest.mark.parametrize("text, message", [
    ("", "the manifest is empty"),
    ("path,label,speaker,gender,split,fold\n", "the manifest has no rows"),
    ("path,label,speaker,gender,split\na.wav,sad,1,,,\n", r"missing column\(s\) \['fold'\]; available columns"),
    ("path,label,speaker,gender,split,fold\na.wav,sad,1,,valid,-1\n", r"unknown split value\(s\) \['valid'\]"),
    ("path,label,speaker,gender,split,fold\na.wav,sad,1,,,x\n", "could not convert"),
])
def test_bad_manifests_name_the_file(tmp_path, text, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(ValueError, match=f"bad.csv: .*{message}"):
        load_manifest(bad)


# ---------------------------------------------------------------------------------------------------- command line

def test_command_line_writes_the_manifest_and_a_summary(crema_d, tmp_path):
    out = tmp_path / "out" / "crema.csv"
    run = subprocess.run([sys.executable, "finetune/prepare.py", "crema-d", str(crema_d), "--out", str(out),
                          "--seed", "1"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "20 rows" in run.stdout and "speakers: 10 (female 5, male 5)" in run.stdout
    assert "dev 4 rows / 2 speakers" in run.stdout and "skipped 2:" in run.stdout
    pd.testing.assert_frame_equal(load_manifest(out), prepare_crema_d(crema_d, seed=1))


def test_command_line_errors_exit_2(tmp_path, capsys):
    assert prepare.main(["emodb", str(tmp_path), "--out", str(tmp_path / "m.csv"), "--seed", "1"]) == 2
    assert "--seed: not an option of emodb" in capsys.readouterr().err
    assert prepare.main(["iemocap", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.csv")]) == 2
    assert "nowhere: no such corpus folder" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()
