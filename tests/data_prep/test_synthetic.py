"""Synthetic media: posed facial expressions that the AU rules recognise, and the labelled speech set."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from avpretext import synthetic
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.segments import load_segments

from .helpers import run_extract

EXPECTED_CLASS = {"happy": "happiness", "surprise": "surprise", "angry": "anger", "neutral": "neutral"}


@pytest.fixture(scope="module")
def face():
    return synthetic.face_image()


def test_default_frame_is_the_photo_and_expressions_are_local(face):
    assert np.array_equal(synthetic.talking_face_frame(face, 0.0), face)
    neutral = synthetic.expression_frame(face, "neutral")
    eyes, mouth = (slice(70, 105), slice(80, 160)), (slice(115, 150), slice(85, 150))
    assert np.abs(neutral[eyes].astype(int) - face[eyes]).mean() < 0.1  # relaxing the smile leaves the eyes
    assert np.abs(neutral[mouth].astype(int) - face[mouth]).mean() > 2
    assert np.array_equal(synthetic.expression_frame(face, "happy", 0.0), neutral)
    surprise = synthetic.expression_frame(face, "surprise")
    brows = (slice(65, 85), slice(80, 160))
    assert np.abs(surprise[brows].astype(int) - neutral[brows]).mean() > 2
    with pytest.raises(ValueError, match="choose from"):
        synthetic.expression_frame(face, "smug")


def test_expression_moves_with_the_head(face):
    still = synthetic.expression_frame(face, "angry", 0.9, jaw_open=5.0)
    moved = synthetic.expression_frame(face, "angry", 0.9, jaw_open=5.0, head_shift=(4.0, 2.0))
    np.testing.assert_array_equal(moved[22:-20, 24:-20], still[20:-22, 20:-24])


def _segment_expressions(table: pd.DataFrame) -> pd.DataFrame:
    """The posed expression of each segment: its video's stretches in time order."""
    rows = []
    for media_id, group in table.groupby("media_id"):
        video = int(re.search(r"talk_(\d+)", media_id).group(1))
        poses = synthetic.sample_stretch_expressions(video)
        assert len(group) == len(poses), media_id  # one segment per stretch
        rows.append(group.sort_values("start").assign(posed=poses))
    return pd.concat(rows)


@pytest.mark.slow
def test_sample_corpus_expressions_get_their_au_labels(face_model, tmp_path):
    # Two videos: happy + angry stretches in one, surprise + a neutral lively stretch in the other.
    root = synthetic.write_sample_corpus(tmp_path / "corpus", num_videos=2)
    run_extract(root, tmp_path / "out", face_model, options={"max_fps": 5})
    # The photograph smiles at rest: its clips need the speaker's baseline (the default is none).
    config = build_label_config({"au": {"mapping": "rules", "baseline": "auto"}})
    table = _segment_expressions(label_corpus(tmp_path / "out", config, progress=False).table)
    assert set(table.posed) == {"happy", "angry", "surprise", "neutral"}
    for row in table.itertuples():
        expected = EXPECTED_CLASS[row.posed]
        share = getattr(row, f"au_frac_{expected}")
        assert row.au_class == expected, (row.media_id, row.start, row.posed, row.au_class)
        # Measured: expressive stretches 0.84-0.95 of their frames; neutral ones 0.85-1.0 since anger fires
        # on 2 of its AUs (a few frames of the lively jaw's lowered brows count as anger).
        assert share >= (0.8 if expected == "neutral" else 0.5), (row.media_id, row.start, row.posed, share)
    # The expressions ride on the lively (loud, moving-jaw) stretches, as in real data.
    assert (table.loc[table.posed != "neutral", "face_label"] == 1).all()


def _rms_db(path) -> float:
    audio, _ = sf.read(path)
    return float(20 * np.log10(np.sqrt(np.mean(audio ** 2))))


def _pitch_hz(path) -> float:
    """Median autocorrelation pitch of the louder 40 ms frames."""
    audio, rate = sf.read(path)
    frames = audio[: len(audio) // 640 * 640].reshape(-1, 640)
    frames = frames[np.sum(frames ** 2, axis=1) >= np.median(np.sum(frames ** 2, axis=1))]
    lo, hi = rate // 400, rate // 60
    pitches = []
    for frame in frames:
        ac = np.correlate(frame, frame, mode="full")[len(frame) - 1:]
        pitches.append(rate / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(pitches))


def test_labeled_speech_manifest_counts_and_determinism(tmp_path):
    manifest = synthetic.write_labeled_speech(tmp_path / "a", speakers=4, per_class=2, duration_s=1.0)
    assert manifest == tmp_path / "a" / "manifest.csv"
    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    assert list(table.columns) == ["path", "label", "speaker", "gender", "split", "fold"]
    assert len(table) == 4 * 4 * 2
    assert table.groupby("label").size().to_dict() == {"angry": 8, "happy": 8, "neutral": 8, "sad": 8}
    assert table.groupby("speaker").size().to_dict() == {f"spk0{s}": 8 for s in range(1, 5)}
    genders = table.drop_duplicates("speaker").set_index("speaker")["gender"].to_dict()
    assert genders == {"spk01": "female", "spk02": "male", "spk03": "female", "spk04": "male"}
    assert (table.split == "").all() and (table.fold == "-1").all()
    info = sf.info(tmp_path / "a" / table.path[0])
    assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
    assert abs(info.duration - 1.0) < 1e-3
    # finetune reads it like any CSV corpus.
    from finetune.recipes import prepare_csv

    prepared = prepare_csv(manifest, gender_column="gender", split_column="split", fold_column="fold")
    assert len(prepared) == len(table) and set(prepared.fold) == {-1}

    again = synthetic.write_labeled_speech(tmp_path / "b", speakers=4, per_class=2, duration_s=1.0)
    assert again.read_bytes() == manifest.read_bytes()
    for rel in table.path:
        assert (tmp_path / "b" / rel).read_bytes() == (tmp_path / "a" / rel).read_bytes(), rel
    other = synthetic.write_labeled_speech(tmp_path / "c", speakers=4, per_class=2, duration_s=1.0, seed=1)
    assert other.read_bytes() == manifest.read_bytes()  # same names...
    assert (tmp_path / "c" / table.path[0]).read_bytes() != (tmp_path / "a" / table.path[0]).read_bytes()  # ...other audio
    with pytest.raises(ValueError, match="choose from"):
        synthetic.write_labeled_speech(tmp_path / "d", classes=("neutral", "bored"))


@pytest.mark.slow
def test_labeled_speech_classes_differ_in_prosody(tmp_path):
    manifest = synthetic.write_labeled_speech(tmp_path, speakers=4, per_class=4)
    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    table["rms_db"] = [_rms_db(tmp_path / p) for p in table.path]
    table["pitch"] = [_pitch_hz(tmp_path / p) for p in table.path]
    level = table.groupby("label").rms_db.mean()
    assert level["sad"] < level["neutral"] < level["angry"] and level["angry"] - level["sad"] > 8, level
    # Relative to each speaker's own voice, happy is higher pitched than sad; female voices are higher.
    table["rel_pitch"] = table.pitch / table.groupby("speaker").pitch.transform("median")
    rel = table.groupby("label").rel_pitch.mean()
    assert rel["happy"] > 1.15 * rel["sad"], rel
    by_gender = table.groupby("gender").pitch.median()
    assert by_gender["female"] > 1.4 * by_gender["male"], by_gender
    # ...but not trivially: the classes overlap in loudness.
    assert table[table.label == "happy"].rms_db.max() > table[table.label == "angry"].rms_db.min()


def test_face_image_is_the_shipped_astronaut_crop():
    """The demo face is read from the package (no scikit-image) and is the exact crop it was made from."""
    import hashlib

    face = synthetic.face_image()
    assert face.shape == (240, 240, 3) and face.dtype == np.uint8 and face.flags.c_contiguous
    assert hashlib.sha256(face.tobytes()).hexdigest() == synthetic.FACE_IMAGE_SHA256


@pytest.mark.slow
def test_segment_table_helper_has_the_columns_of_a_real_label_run(face_model, tmp_path):
    """write_segment_table (no video) stands in for extract + label in the training tests: same columns in the
    same order, same dtypes, labels and masks as the tasks assign them, some face/au masks False."""
    from pretext.tasks import get_task

    from tests.pretext.conftest import TASKS

    config = build_label_config({"tasks": list(TASKS)})
    root = synthetic.write_sample_corpus(tmp_path / "corpus", num_videos=2, stretches=2)
    run_extract(root, tmp_path / "extract", face_model, options={"max_fps": 5})
    real = label_corpus(tmp_path / "extract", config, progress=False).table
    folder = synthetic.write_segment_table(tmp_path / "written", tasks=TASKS)
    written = load_segments(folder)
    assert list(written.columns) == list(real.columns)
    # The sample corpus has no manifest, so its speaker column is all None (object); the helper names speakers.
    dtypes = written.dtypes.drop("speaker").astype(str), real.dtypes.drop("speaker").astype(str)
    pd.testing.assert_series_equal(*dtypes)
    assert (folder / "label_config.json").read_text() == (tmp_path / "extract" / "label_config.json").read_text()
    assert len(written) == 24 and (written["config_hash"] == config.hash()).all()
    for name in ("energy", "face", "au", "duration"):
        assert set(written.loc[written[f"{name}_mask"], f"{name}_label"]) >= {0, 1}, name
        assert (written.loc[~written[f"{name}_mask"], f"{name}_label"] == -1).all(), name
    assert 0 < (~written["face_mask"]).sum() < len(written) and (written["face_mask"] == written["au_mask"]).all()
    for name in ("energy", "face", "au"):  # labels are the tasks' own, from the written values
        task = get_task(name)
        relabelled, _ = task.assign_labels(written.drop(columns=[f"{name}_label", f"{name}_mask"]),
                                           config.task_configs[name])
        assert (relabelled[f"{name}_label"] == written[f"{name}_label"]).all(), name
    for path in written["audio_path"].unique():
        info = sf.info(path)
        assert info.samplerate == 16000 and info.channels == 1
        assert written.loc[written["audio_path"] == path, "end"].max() <= info.duration
