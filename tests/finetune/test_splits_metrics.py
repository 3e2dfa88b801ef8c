"""Evaluation protocols (speaker-independent splits, label fractions), SER metrics, the manifest -> segment
table step and pretraining's ``read_audio``. Small synthetic manifests and audio written here; no training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from finetune.data import Targets, probe_durations, resolve_targets, segment_table
from finetune.metrics import ccc, classification_metrics, metrics_from_confusion, plot_confusion
from finetune.recipes import MANIFEST_COLUMNS
from finetune.splits import deal_speakers, label_subset, make_splits
from avpretext.common.audio import AudioError, read_audio

LABELS = ("angry", "happy", "neutral", "sad")


# ------------------------------------------------------------------------------------------------- helpers

def _manifest(speakers: dict[str, str], rows_per_speaker: int = 4, split: dict[str, str] | None = None,
              fold: dict[str, int] | None = None) -> pd.DataFrame:
    """A manifest with ``rows_per_speaker`` rows per speaker (labels cycling), sorted by path."""
    rows = []
    for speaker, gender in speakers.items():
        for i in range(rows_per_speaker):
            rows.append({"path": f"/corpus/{speaker}/{speaker}_{i:02d}.wav", "label": LABELS[i % len(LABELS)],
                         "speaker": speaker, "gender": gender,
                         "split": (split or {}).get(speaker, ""), "fold": (fold or {}).get(speaker, -1)})
    df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    return df.sort_values("path").reset_index(drop=True)


def _ravdess_like() -> pd.DataFrame:
    """24 speakers "01".."24": the first 12 female, the last 12 male."""
    return _manifest({f"{i:02d}": "female" if i <= 12 else "male" for i in range(1, 25)})


def _speakers(df: pd.DataFrame) -> set[str]:
    return set(df["speaker"])


def _genders(df: pd.DataFrame) -> dict[str, int]:
    return df.groupby("gender")["speaker"].nunique().to_dict()


def _partition(splits) -> list[tuple[str, ...]]:
    return [tuple(s.test_speakers) for s in splits]


# ------------------------------------------------------------------------------------------------ k-fold

def test_folds_test_every_speaker_exactly_once_and_are_speaker_disjoint():
    manifest = _ravdess_like()
    splits = make_splits(manifest, protocol="folds", num_folds=6, dev_speakers=2, split_seed=0)
    assert [s.name for s in splits] == [f"fold{i}" for i in range(6)]
    tested = [speaker for s in splits for speaker in s.test_speakers]
    assert sorted(tested) == sorted(manifest["speaker"].unique())  # each speaker once, none forgotten
    assert len(tested) == len(set(tested)) == 24
    everyone = _speakers(manifest)
    for s in splits:
        train, dev, test = _speakers(s.train), _speakers(s.dev), _speakers(s.test)
        assert len(test) == 4 and len(dev) == 2 and len(train) == 18
        assert not train & dev and not train & test and not dev & test
        # dev speakers come from the fold's training part: train + dev is everyone not tested
        assert train | dev == everyone - test
        # rows are partitioned, kept whole, with the manifest's columns and a fresh index
        assert len(s.train) + len(s.dev) + len(s.test) == len(manifest)
        assert sorted(pd.concat([s.train, s.dev, s.test])["path"]) == sorted(manifest["path"])
        for part in (s.train, s.dev, s.test):
            assert list(part.columns) == list(MANIFEST_COLUMNS)
            assert list(part.index) == list(range(len(part)))
        assert set(s.test["path"]) == set(manifest.loc[manifest["speaker"].isin(test), "path"])


def test_folds_are_gender_balanced():
    splits = make_splits(_ravdess_like(), protocol="folds", num_folds=6, split_seed=3)
    for s in splits:
        assert _genders(s.test) == {"female": 2, "male": 2}, s.name
        # the dev speakers are taken gender-balanced from 10 female + 10 male training speakers
        assert _genders(s.dev) == {"female": 1, "male": 1}, s.name
        assert _genders(s.train) == {"female": 9, "male": 9}, s.name


def test_folds_depend_only_on_split_seed():
    manifest = _ravdess_like()
    first = make_splits(manifest, protocol="folds", split_seed=7)
    again = make_splits(manifest.sample(frac=1.0, random_state=1), protocol="folds", split_seed=7)
    assert _partition(first) == _partition(again)  # row order does not matter either
    assert [sorted(_speakers(s.dev)) for s in first] == [sorted(_speakers(s.dev)) for s in again]
    other = make_splits(manifest, protocol="folds", split_seed=8)
    assert sorted(_partition(first)) != sorted(_partition(other))
    # the other seed is still a valid protocol: every speaker tested once
    assert sorted(sp for group in _partition(other) for sp in group) == sorted(manifest["speaker"].unique())


def test_folds_with_uneven_speaker_count():
    manifest = _manifest({f"s{i:02d}": ("female", "male")[i % 2] for i in range(11)})  # 5 male, 6 female
    splits = make_splits(manifest, protocol="folds", num_folds=3, dev_speakers=1)
    assert sorted(len(s.test_speakers) for s in splits) == [3, 4, 4]
    assert sorted(sp for s in splits for sp in s.test_speakers) == sorted(manifest["speaker"].unique())
    for s in splits:
        counts = _genders(s.test)
        assert counts["female"] == 2 and counts["male"] in (1, 2)
        assert len(_speakers(s.dev)) == 1 and not _speakers(s.dev) & _speakers(s.train)


def test_auto_uses_folds_without_a_split_column():
    manifest = _ravdess_like()
    auto = make_splits(manifest, protocol="auto", num_folds=4, split_seed=0)
    folds = make_splits(manifest, protocol="folds", num_folds=4, split_seed=0)
    assert [s.name for s in auto] == ["fold0", "fold1", "fold2", "fold3"]
    assert _partition(auto) == _partition(folds)


def test_predefined_fold_column_gives_the_folds():
    """IEMOCAP-like: sessions 1..5, one female and one male speaker each; the sessions are the folds."""
    speakers = {f"Ses0{n}{g[0].upper()}": g for n in range(1, 6) for g in ("female", "male")}
    manifest = _manifest(speakers, fold={s: int(s[4]) for s in speakers})
    for protocol in ("auto", "folds"):
        splits = make_splits(manifest, protocol=protocol, num_folds=6, dev_speakers=2, split_seed=0)
        assert [s.name for s in splits] == [f"fold{n}" for n in range(1, 6)]  # num_folds ignored
        for n, s in enumerate(splits, start=1):
            assert s.test_speakers == [f"Ses0{n}F", f"Ses0{n}M"]
            assert set(s.test["fold"]) == {n}
            assert n not in set(s.train["fold"]) | set(s.dev["fold"])
            assert len(_speakers(s.dev)) == 2 and _genders(s.dev) == {"female": 1, "male": 1}
            assert not _speakers(s.dev) & _speakers(s.train)
            assert _speakers(s.train) | _speakers(s.dev) == set(speakers) - set(s.test_speakers)


# -------------------------------------------------------------------------------------------- split protocol

def _split_manifest(with_dev: bool = True) -> pd.DataFrame:
    speakers = {f"{i:02d}": "female" if i % 2 else "male" for i in range(1, 25)}
    split = {s: "train" for s in speakers}
    for s in ("21", "22", "23", "24"):
        split[s] = "test"
    if with_dev:
        for s in ("17", "18", "19", "20"):
            split[s] = "dev"
    return _manifest(speakers, split=split)


@pytest.mark.parametrize("protocol", ["split", "auto"])
def test_split_protocol_uses_the_split_column(protocol):
    manifest = _split_manifest()
    splits = make_splits(manifest, protocol=protocol)
    assert len(splits) == 1 and splits[0].name == "split"
    s = splits[0]
    for part, name in ((s.train, "train"), (s.dev, "dev"), (s.test, "test")):
        expected = manifest[manifest["split"] == name].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, expected)
    assert s.test_speakers == ["21", "22", "23", "24"]
    assert _speakers(s.dev) == {"17", "18", "19", "20"}


def test_split_protocol_without_dev_takes_dev_speakers_from_train():
    manifest = _split_manifest(with_dev=False)
    original_train = set(manifest.loc[manifest["split"] == "train", "speaker"])
    assert len(original_train) == 20
    s = make_splits(manifest, protocol="split", dev_speakers=2, split_seed=0)[0]
    dev, train = _speakers(s.dev), _speakers(s.train)
    assert len(dev) == 2 and dev <= original_train
    assert not dev & train and train | dev == original_train
    assert _genders(s.dev) == {"female": 1, "male": 1}
    assert set(s.dev["split"]) == {"train"}  # rows keep the manifest's columns untouched
    assert s.test_speakers == ["21", "22", "23", "24"]
    assert len(s.train) + len(s.dev) + len(s.test) == len(manifest)
    # deterministic for a split seed
    again = make_splits(manifest, protocol="split", dev_speakers=2, split_seed=0)[0]
    assert _speakers(again.dev) == dev
    assert {frozenset(_speakers(make_splits(manifest, protocol="split", split_seed=seed)[0].dev))
            for seed in range(8)} != {frozenset(dev)}


def test_dev_speakers_gender_balanced_with_uneven_training_genders():
    speakers = {f"f{i:02d}": "female" for i in range(11)} | {f"m{i:02d}": "male" for i in range(9)}
    speakers |= {"t1": "female", "t2": "male"}
    manifest = _manifest(speakers, split={s: "test" if s.startswith("t") else "train" for s in speakers})
    for seed in range(5):
        dev = make_splits(manifest, protocol="split", dev_speakers=2, split_seed=seed)[0].dev
        assert _genders(dev) == {"female": 1, "male": 1}, seed


def test_split_protocol_refuses_a_shared_speaker():
    manifest = _split_manifest()
    leaked = manifest.index[manifest["speaker"] == "07"][:1]
    manifest.loc[leaked, "split"] = "test"  # speaker 07 now in train and test
    with pytest.raises(ValueError, match=r"07 \(test/train\)"):
        make_splits(manifest, protocol="split")
    with pytest.raises(ValueError, match="07"):
        make_splits(manifest, protocol="auto")


def test_split_protocol_needs_a_split_everywhere_and_protocol_names_are_checked():
    manifest = _ravdess_like()
    with pytest.raises(ValueError, match="split"):
        make_splits(manifest, protocol="split", source="my.csv")
    with pytest.raises(ValueError, match="unknown protocol 'loso'"):
        make_splits(manifest, protocol="loso")


def test_folds_protocol_ignores_the_split_column():
    manifest = _split_manifest()
    splits = make_splits(manifest, protocol="folds", num_folds=4)
    assert [s.name for s in splits] == ["fold0", "fold1", "fold2", "fold3"]
    assert sorted(sp for s in splits for sp in s.test_speakers) == sorted(manifest["speaker"].unique())


# ------------------------------------------------------------------------------------- dev covering classes

def _one_class_speakers() -> pd.DataFrame:
    """BAVED's shape: 24 speakers, most of whom record a single class (3 rows each), a few all four."""
    rows = []
    for i in range(1, 25):
        speaker, gender = f"{i:02d}", "female" if i <= 12 else "male"
        labels = list(LABELS) if i % 6 == 0 else [LABELS[i % len(LABELS)]] * 3
        rows += [{"path": f"/corpus/{speaker}/{speaker}_{j:02d}.wav", "label": label, "speaker": speaker,
                  "gender": gender, "split": "", "fold": -1} for j, label in enumerate(labels)]
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def test_dev_covers_every_class_when_speakers_record_one_class():
    manifest = _one_class_speakers()
    plain = make_splits(manifest, protocol="folds", num_folds=4, dev_speakers=2, split_seed=0)
    # Without the rule some fold's two dev speakers miss a class: the failure the rule exists for.
    assert any(s.dev["label"].nunique() < len(LABELS) for s in plain)
    covered = make_splits(manifest, protocol="folds", num_folds=4, dev_speakers=2, split_seed=0,
                          label_column="label", dev_min_per_class=3)
    for before, after in zip(plain, covered):
        assert after.dev["label"].value_counts().reindex(list(LABELS)).min() >= 3
        assert set(after.train["label"]) == set(LABELS)  # training keeps every class
        assert set(before.dev["speaker"]) <= set(after.dev["speaker"])  # the seeded draw first, then additions
        assert after.test.equals(before.test)  # the test speakers never move
        assert not _speakers(after.dev) & _speakers(after.train)
        assert len(after.train) + len(after.dev) == len(before.train) + len(before.dev)


def test_dev_rule_leaves_splits_alone_when_every_speaker_records_every_class():
    manifest = _ravdess_like()  # 4 rows per speaker, one of each class: two speakers give 2 of each
    plain = make_splits(manifest, protocol="folds", num_folds=6, dev_speakers=2, split_seed=0)
    covered = make_splits(manifest, protocol="folds", num_folds=6, dev_speakers=2, split_seed=0,
                          label_column="label", dev_min_per_class=2)
    for before, after in zip(plain, covered):
        assert after.dev.equals(before.dev) and after.train.equals(before.train)


def test_dev_rule_applies_to_a_split_without_dev_rows():
    manifest = _one_class_speakers()
    manifest["split"] = ["test" if s in {"01", "02", "03", "04", "06"} else "train" for s in manifest["speaker"]]
    split = make_splits(manifest, protocol="split", dev_speakers=1, split_seed=0, label_column="label",
                        dev_min_per_class=1)[0]
    assert set(split.dev["label"]) == set(LABELS) and set(split.train["label"]) == set(LABELS)


def test_cells_recorded_before_the_dev_rule_count_as_dev_min_per_class_0():
    """A finished cell whose config predates ``dev_min_per_class`` had dev parts of the seeded speakers alone: a
    rerun with the rule on (the default) must be refused as other settings, not reused as if it had the rule."""
    import dataclasses
    import json

    from finetune.baseline import baseline_settings
    from finetune.config import FinetuneConfig
    from finetune.experiment import baseline_differences_of, setting_differences

    config = FinetuneConfig(manifest="m.csv", mode="finetune")
    old = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(config))).items() if k != "dev_min_per_class"}
    assert setting_differences(old, config) == ["dev_min_per_class: 0 -> 5"]
    assert setting_differences(old, dataclasses.replace(config, dev_min_per_class=0)) == []
    baseline = dataclasses.replace(config, mode="egemaps")
    saved = {k: v for k, v in baseline_settings(baseline).items() if k != "dev_min_per_class"}
    assert baseline_differences_of(saved, baseline) == ["dev_min_per_class: 0 -> 5"]
    assert baseline_differences_of(saved, dataclasses.replace(baseline, dev_min_per_class=0)) == []


# --------------------------------------------------------------------------------------------- deal_speakers

def test_deal_speakers_balances_genders_and_uses_everyone():
    table = pd.DataFrame({"speaker": [f"f{i}" for i in range(7)] + [f"m{i}" for i in range(5)] + ["u0", "u1"],
                          "gender": ["female"] * 7 + ["male"] * 5 + ["", ""]})
    groups = deal_speakers(table, 3, seed=0)
    assert len(groups) == 3
    assert all(g == sorted(g) for g in groups)
    assert sorted(s for g in groups for s in g) == sorted(table["speaker"])
    for prefix, total in (("f", 7), ("m", 5), ("u", 2)):
        sizes = [sum(s.startswith(prefix) for s in g) for g in groups]
        assert sum(sizes) == total and max(sizes) - min(sizes) <= 1, (prefix, sizes)
    assert sorted(len(g) for g in groups) == [4, 5, 5]
    assert deal_speakers(table, 3, seed=0) == groups
    assert deal_speakers(table.iloc[::-1], 3, seed=0) == groups  # input order does not matter


def test_deal_speakers_needs_enough_speakers():
    table = pd.DataFrame({"speaker": ["a", "b"], "gender": ["female", "male"]})
    with pytest.raises(ValueError, match="2 speakers cannot fill 3 folds"):
        deal_speakers(table, 3, seed=0)
    assert deal_speakers(table, 2, seed=5) in ([["a"], ["b"]], [["b"], ["a"]])


# ---------------------------------------------------------------------------------------------- label_subset

CLASS_SIZES = {"angry": 40, "happy": 20, "neutral": 10, "sad": 7}


def _train_rows(sizes: dict[str, int] = CLASS_SIZES) -> pd.DataFrame:
    rows = [{"path": f"/c/{label}_{i:03d}.wav", "label": label, "speaker": f"{i % 5}", "gender": "",
             "split": "", "fold": -1} for label, n in sizes.items() for i in range(n)]
    # interleave classes so that the index is not grouped by class
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.mark.parametrize("fraction, expected", [
    (0.5, {"angry": 20, "happy": 10, "neutral": 5, "sad": 4}),   # round(3.5) = 4
    (0.25, {"angry": 10, "happy": 5, "neutral": 2, "sad": 2}),   # round(2.5) = 2, round(1.75) = 2
    (0.1, {"angry": 4, "happy": 2, "neutral": 1, "sad": 1}),     # round(0.7) = 1
])
def test_label_subset_is_stratified(fraction, expected):
    train = _train_rows()
    subset = label_subset(train, fraction, seed=0)
    assert subset["label"].value_counts().to_dict() == expected
    assert expected == {c: round(fraction * n) for c, n in CLASS_SIZES.items()}
    # whole rows of the input, original index kept, no duplicates
    assert subset.index.is_unique and subset.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(subset, train.loc[subset.index])


def test_label_subset_is_nested_and_seeded():
    train = _train_rows()
    for seed in (0, 1, 2):
        kept = {f: set(label_subset(train, f, seed=seed)["path"]) for f in (0.1, 0.25, 0.5, 1.0)}
        assert kept[0.1] < kept[0.25] < kept[0.5] < kept[1.0] == set(train["path"])
    assert set(label_subset(train, 0.5, seed=0)["path"]) != set(label_subset(train, 0.5, seed=1)["path"])
    assert set(label_subset(train, 0.1, seed=0)["path"]) != set(label_subset(train, 0.1, seed=1)["path"])
    # deterministic, independent of row order
    shuffled = train.sample(frac=1.0, random_state=9)
    assert set(label_subset(shuffled, 0.25, seed=4)["path"]) == set(label_subset(train, 0.25, seed=4)["path"])
    pd.testing.assert_frame_equal(label_subset(train, 0.25, seed=4), label_subset(train, 0.25, seed=4))


def test_label_subset_refuses_an_empty_class():
    train = _train_rows({"angry": 40, "happy": 20, "neutral": 10, "sad": 3})
    with pytest.raises(ValueError, match=r"leaves class 'sad' empty \(3 training rows\)"):
        label_subset(train, 0.1, seed=0)  # sad: round(0.3) = 0


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_label_subset_fraction_range(fraction):
    with pytest.raises(ValueError, match=r"label fraction must be in \(0, 1\]"):
        label_subset(_train_rows(), fraction, seed=0)


def test_label_subset_full_fraction_keeps_everything():
    train = _train_rows()
    pd.testing.assert_frame_equal(label_subset(train, 1.0, seed=3), train)


# ---------------------------------------------------------------------------------------------------- metrics

NAMES = ["angry", "calm", "happy", "neutral", "sad"]
# calm is never predicted; sad is never a reference but predicted once.
Y_TRUE = [0, 0, 0, 1, 2, 2, 3, 3, 3, 3]
Y_PRED = [0, 0, 2, 0, 2, 4, 3, 3, 3, 0]
CONFUSION = [[2, 0, 1, 0, 0],
             [1, 0, 0, 0, 0],
             [0, 0, 1, 0, 1],
             [1, 0, 0, 3, 0],
             [0, 0, 0, 0, 0]]


def _check_example(m: dict) -> None:
    approx = pytest.approx
    assert m["confusion"] == CONFUSION
    assert m["count"] == 10 and m["class_names"] == NAMES
    assert m["accuracy"] == approx(6 / 10)
    # recall 2/3, 0, 1/2, 3/4 over the four classes that occur in the references (sad is left out)
    assert m["uar"] == approx(23 / 48)
    assert m["macro_recall"] == approx(23 / 48)
    # precision 2/4, 0 (calm never predicted), 1/2, 3/3
    assert m["macro_precision"] == approx(1 / 2)
    # f1: 2*(1/2*2/3)/(1/2+2/3) = 4/7, 0, 1/2, 2*(1*3/4)/(7/4) = 6/7
    assert m["macro_f1"] == approx(27 / 56)
    per = m["per_class"]
    assert per["angry"] == approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "support": 3})
    assert per["calm"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per["happy"] == approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert per["neutral"] == approx({"precision": 1.0, "recall": 0.75, "f1": 6 / 7, "support": 4})
    assert per["sad"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert isinstance(per["angry"]["support"], int) and isinstance(m["accuracy"], float)


def test_classification_metrics_hand_computed():
    m = classification_metrics(np.array(Y_TRUE), np.array(Y_PRED), NAMES)
    _check_example(m)
    # rows are references: one calm utterance predicted angry, never the other way round
    assert m["confusion"][1][0] == 1 and m["confusion"][0][1] == 0
    assert m["confusion"][2][4] == 1 and m["confusion"][4][2] == 0
    assert classification_metrics(Y_TRUE, Y_PRED, NAMES) == m  # plain lists work too


def test_classification_metrics_perfect_and_empty():
    m = classification_metrics([0, 1, 1, 2], [0, 1, 1, 2], ["a", "b", "c"])
    assert m["accuracy"] == m["uar"] == m["macro_f1"] == m["macro_precision"] == 1.0
    assert m["confusion"] == [[1, 0, 0], [0, 2, 0], [0, 0, 1]]
    empty = classification_metrics([], [], ["a", "b"])
    # one documented behaviour on empty input everywhere (avpretext.common.metrics): no score, NaN
    assert empty["count"] == 0 and np.isnan(empty["accuracy"]) and np.isnan(empty["uar"])


def test_metrics_from_summed_confusion():
    # two folds whose concatenation is the example above
    fold_a = classification_metrics(Y_TRUE[:5], Y_PRED[:5], NAMES)
    fold_b = classification_metrics(Y_TRUE[5:], Y_PRED[5:], NAMES)
    summed = np.array(fold_a["confusion"]) + np.array(fold_b["confusion"])
    m = metrics_from_confusion(summed, NAMES)
    _check_example(m)
    assert m == classification_metrics(Y_TRUE, Y_PRED, NAMES)
    # pooled UAR is not the mean of the folds' UARs
    assert m["uar"] != pytest.approx((fold_a["uar"] + fold_b["uar"]) / 2)
    assert metrics_from_confusion(CONFUSION, NAMES) == m  # nested lists accepted


def _ccc_reference(x, y) -> float:
    """Lin's CCC written from Pearson's r: 2 r sx sy / (sx^2 + sy^2 + (mx - my)^2), population moments."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    r = np.corrcoef(x, y)[0, 1]
    sx, sy = np.std(x), np.std(y)
    return 2 * r * sx * sy / (sx ** 2 + sy ** 2 + (np.mean(x) - np.mean(y)) ** 2)


def test_ccc():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(x, x + 1) == pytest.approx(0.8)        # 2*2 / (2 + 2 + 1)
    assert ccc(x, 2 * x) == pytest.approx(8 / 19)     # 2*4 / (2 + 8 + 9)
    assert ccc(x, -x + 6) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = 0.7 * a + 0.3 + rng.normal(scale=0.5, size=200)
    assert ccc(a, b) == pytest.approx(_ccc_reference(a, b), rel=1e-9)
    assert ccc(a, b) == pytest.approx(ccc(b, a))
    assert 0 < ccc(a, b) < np.corrcoef(a, b)[0, 1] < 1  # bias and scale cost concordance, not correlation
    assert ccc(list(a), list(b)) == pytest.approx(ccc(a, b))


def test_plot_confusion_writes_a_png(tmp_path):
    out = plot_confusion(CONFUSION, NAMES, tmp_path / "confusion.png", title="fold0")
    assert out == tmp_path / "confusion.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


# ---------------------------------------------------------------------------------------- finetune.data

def test_resolve_targets_sorted_by_default():
    manifest = pd.DataFrame({"path": ["p1", "p2", "p3", "p4"], "label": ["sad", "angry", "happy", "angry"],
                             "speaker": "a", "gender": "", "split": "", "fold": -1})
    targets = resolve_targets(manifest)
    assert targets.class_names == ["angry", "happy", "sad"]
    assert targets.categorical and targets.names == ["emotion"] and targets.num_outputs == 3


def test_resolve_targets_explicit_order_and_unknown_labels():
    manifest = pd.DataFrame({"path": ["p1", "p2", "p3", "p4", "p5"],
                             "label": ["sad", "angry", "happy", "calm", "calm"]})
    targets = resolve_targets(manifest, classes="neutral, sad,angry,happy,calm")
    assert targets.class_names == ["neutral", "sad", "angry", "happy", "calm"]  # the given order, not sorted
    assert targets.num_outputs == 5
    with pytest.raises(ValueError) as info:
        resolve_targets(manifest, classes="angry,happy", source="corpus.csv")
    message = str(info.value)
    assert message.startswith("corpus.csv:")
    assert "'calm' (2 rows)" in message and "'sad' (1 rows)" in message
    assert "'angry' (" not in message and "'happy' (" not in message


def test_resolve_targets_dimensions():
    manifest = pd.DataFrame({"path": ["p1"], "label": ["x"], "arousal": [3.0], "valence": [4.5]})
    targets = resolve_targets(manifest, dimensions="arousal, valence")
    assert targets.dimensions == ["arousal", "valence"] and not targets.categorical
    assert targets.names == ["arousal", "valence"] and targets.num_outputs == 2
    with pytest.raises(ValueError, match=r"no column for dimension\(s\) \['dominance'\]"):
        resolve_targets(manifest, dimensions="arousal,dominance")


def _audio_manifest(paths: list[Path]) -> pd.DataFrame:
    return pd.DataFrame({"path": [str(p) for p in paths], "label": ["angry", "sad", "happy", "angry"][:len(paths)],
                         "speaker": [f"{i}" for i in range(len(paths))], "gender": "", "split": "", "fold": -1})


@pytest.fixture
def audio_files(tmp_path):
    rng = np.random.default_rng(0)
    wav = tmp_path / "a.wav"
    sf.write(wav, rng.standard_normal(8000).astype(np.float32) * 0.1, 16000)            # 0.5 s
    flac = tmp_path / "b.flac"
    sf.write(flac, rng.standard_normal((27563, 2)) * 0.1, 22050, subtype="PCM_16")       # 1.25 s stereo
    missing = tmp_path / "missing.wav"
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return wav, flac, missing, corrupt


def test_probe_durations_reads_headers(audio_files):
    wav, flac, _, _ = audio_files
    table, skipped = probe_durations(_audio_manifest([wav, flac]), skip_bad_audio=False)
    assert skipped == []
    assert table["duration_s"].tolist() == pytest.approx([0.5, 27563 / 22050])
    assert table["path"].tolist() == [str(wav), str(flac)]


@pytest.mark.parametrize("bad", [2, 3], ids=["missing", "corrupt"])
def test_probe_durations_bad_file_raises(audio_files, bad):
    wav, flac = audio_files[:2]
    bad_path = audio_files[bad]
    with pytest.raises(AudioError) as info:
        probe_durations(_audio_manifest([wav, bad_path, flac]), skip_bad_audio=False)
    assert info.value.path == str(bad_path)
    assert str(bad_path) in str(info.value) and "cannot read audio" in str(info.value)


def test_probe_durations_skips_bad_files(audio_files):
    wav, flac, missing, corrupt = audio_files
    manifest = _audio_manifest([missing, wav, corrupt, flac])
    table, skipped = probe_durations(manifest, skip_bad_audio=True)
    assert table["path"].tolist() == [str(wav), str(flac)]
    assert table["label"].tolist() == ["sad", "angry"]  # the rows' own columns travel with them
    assert list(table.index) == [0, 1]
    assert table["duration_s"].tolist() == pytest.approx([0.5, 27563 / 22050])
    assert [p for p, _ in skipped] == [str(missing), str(corrupt)]
    for path, reason in skipped:
        assert reason.startswith(f"{path}: cannot read audio (")


def test_segment_table_categorical():
    rows = pd.DataFrame({"path": ["x.wav", "y.wav", "z.wav"], "label": ["sad", "angry", "neutral"],
                         "speaker": ["s1", "s2", "s1"], "duration_s": [1.5, 2.0, 0.75]}, index=[7, 3, 5])
    table = segment_table(rows, Targets(class_names=["sad", "neutral", "angry"]))
    assert table["audio_path"].tolist() == ["x.wav", "y.wav", "z.wav"]
    assert table["emotion_label"].tolist() == [0, 2, 1]  # indices follow the class order, not sorted names
    assert table["emotion_label"].dtype == np.int64
    assert table["emotion_mask"].tolist() == [True, True, True]
    assert table["start"].tolist() == [0.0, 0.0, 0.0] and table["end"].tolist() == [1.5, 2.0, 0.75]
    assert table["speaker"].tolist() == ["s1", "s2", "s1"]


def test_segment_table_dimensional_nan_is_masked():
    rows = pd.DataFrame({"path": ["x.wav", "y.wav"], "label": ["", ""], "speaker": ["s", "t"],
                         "duration_s": [1.0, 2.0], "arousal": [3.5, np.nan], "valence": [np.nan, 2.25]})
    table = segment_table(rows, Targets(dimensions=["arousal", "valence"]))
    assert table["arousal_mask"].tolist() == [True, False]
    assert table["valence_mask"].tolist() == [False, True]
    assert table["arousal_label"].tolist() == [3.5, 0.0] and table["valence_label"].tolist() == [0.0, 2.25]
    assert not table[["arousal_label", "valence_label"]].isna().any().any()
    assert "emotion_label" not in table


# ------------------------------------------------------------------------------------- pretext read_audio

@pytest.fixture
def stereo_44k(tmp_path):
    """1 s at 44.1 kHz: left 0.6*s(t), right 0.2*s(t) with s a sum of two incommensurate tones plus a ramp,
    so that the mono mix is 0.4*s(t) and any offset in time changes the samples."""
    t = np.arange(44100) / 44100
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([0.6 * _signal(t), 0.2 * _signal(t)], axis=1), 44100, subtype="FLOAT")
    return path


def _signal(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 317 * t) + 0.5 * t


def test_read_audio_resamples_and_mixes_down(stereo_44k):
    wav = read_audio(stereo_44k)
    assert wav.ndim == 1 and wav.dtype.is_floating_point and str(wav.dtype) == "torch.float32"
    assert len(wav) == 16000
    expected = 0.4 * _signal(np.arange(16000) / 16000)
    np.testing.assert_allclose(wav.numpy()[100:-100], expected[100:-100], atol=2e-3)


def test_read_audio_start_stop_counted_at_16k(stereo_44k):
    full = read_audio(stereo_44k).numpy()
    part = read_audio(stereo_44k, start=8000, stop=12000).numpy()
    assert len(part) == 4000 and part.dtype == np.float32
    expected = 0.4 * _signal(np.arange(8000, 12000) / 16000)
    np.testing.assert_allclose(part[50:-50], expected[50:-50], atol=2e-3)
    np.testing.assert_allclose(part[50:-50], full[8050:11950], atol=1e-3)
    head = read_audio(stereo_44k, start=0, stop=1600).numpy()
    assert len(head) == 1600
    np.testing.assert_allclose(head[50:-50], full[50:1550], atol=1e-3)


def test_read_audio_missing_file(tmp_path):
    with pytest.raises(AudioError, match="nothing.wav: cannot read audio"):
        read_audio(tmp_path / "nothing.wav")
