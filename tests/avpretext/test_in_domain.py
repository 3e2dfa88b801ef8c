"""In-domain unlabelled audio in pretraining (experiments/in_domain.py) on real audio files through real
extraction, labelling and a few pretraining steps: synthetic speech written by the test (no shared data
needed), and RAVDESS recordings (skipped with the reason without the shared data folder).

The defining property: a fold's pretraining data hold every file of its training speakers and no file of its
dev or test speakers (though the shared extraction holds every fold's training files, i.e. other folds' test
speakers), and every segment of the pool, labelled in one run with them."""
from __future__ import annotations

import dataclasses
import json
import os

import pandas as pd
import pytest

from avpretext import synthetic
from data_prep import store
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.segments import STATS_FILE, load_segments
from encoders import load_pretrained
from experiments.in_domain import (FILES_FILE, RECORD_FILE, SPEAKER_PREFIX, main, prepare_fold_data,
                                   pretrain_in_domain)
from finetune.experiment import base_config, check_pretrained, check_pretraining_speakers, run_grid
from finetune.recipes import prepare_csv, prepare_ravdess, write_manifest
from finetune.train import load_splits
from pretext.config import RUN_CONFIG_FILE, TrainConfig
from tests.conftest import RAVDESS, _require
from tests.data_prep.helpers import run_extract

pytest.importorskip("opensmile")  # the acoustic task's descriptors

TASKS = ["energy", "cluster", "acoustic"]
SETTINGS = ["num_folds=3", "dev_speakers=1"]  # 6 speakers: each fold tests 2, holds out 1 for dev, trains on 3


@pytest.fixture(scope="module")
def pool(tmp_path_factory, face_model):
    """A pool of two voices named like two of the synthetic corpus's speakers (spk01, spk02), extracted and
    labelled with the audio-only tasks."""
    root = tmp_path_factory.mktemp("in_domain_pool")
    source = synthetic.write_labeled_speech(root / "pool", speakers=2, per_class=2, seed=7)
    assert not run_extract(source, root / "extract", face_model).failed
    label_corpus(root / "extract", build_label_config({"tasks": TASKS}), progress=False)
    return root / "extract"


def _corpus(kind: str, root):
    """A labelled corpus of 6 speakers: synthetic speech (4 classes x 2 clips each), or 4 recordings of each of
    RAVDESS's actors 1-6 (skipped with the reason when the shared data folder is absent)."""
    if kind == "synthetic":
        return write_manifest(prepare_csv(synthetic.write_labeled_speech(root / "corpus", speakers=6, per_class=2),
                                          gender_column="gender", split_column="split", fold_column="fold"),
                              root / "m.csv")
    rows = prepare_ravdess(_require(RAVDESS, "the RAVDESS speech corpus"))
    rows = rows[rows["speaker"].astype(int) <= 6].sort_values("path").groupby("speaker").head(4)
    return write_manifest(rows, root / "m.csv")


@pytest.fixture(scope="module", params=["synthetic", "ravdess"])
def setup(request, tmp_path_factory, pool):
    """Every fold's data for a corpus and the pool."""
    root = tmp_path_factory.mktemp(f"in_domain_{request.param}")
    manifest = _corpus(request.param, root)
    work = root / "work"
    _, data = prepare_fold_data(str(manifest), pool, work, TASKS, SETTINGS, workers=1, log=lambda *_: None)
    return {"manifest": manifest, "pool_labels": pool, "work": work, "data": data}


def _source_path(audio_path: str) -> str:
    """The original file of a segment's audio, from its extracted item's meta.json."""
    return os.path.realpath(store.read_json(os.path.join(os.path.dirname(audio_path), store.META_FILE))["path"])


@pytest.mark.slow
def test_each_fold_holds_its_training_files_and_the_pool_and_nothing_of_its_dev_or_test_speakers(setup):
    _, splits = load_splits(dataclasses.replace(base_config(str(setup["manifest"]), SETTINGS), fold="all"))
    assert sorted(setup["data"]) == ["fold0", "fold1", "fold2"]
    pool = load_segments(setup["pool_labels"])
    corpus = {os.path.realpath(p) for p in pd.read_csv(setup["manifest"], dtype=str)["path"]}
    for split in splits:
        labels = setup["data"][split.name]
        # The items of the fold's label run, by the file each was extracted from (its meta.json).
        items = {link.name: os.path.realpath(store.read_json(link / store.META_FILE)["path"])
                 for link in (setup["work"] / split.name / "extract" / store.ITEMS_DIR).iterdir()}
        in_domain = {media: path for media, path in items.items() if path in corpus}
        train = {os.path.realpath(p) for p in split.train["path"]}
        held_out = {os.path.realpath(p) for p in pd.concat([split.dev, split.test])["path"]}
        assert set(in_domain.values()) == train, split.name  # every training file, and no other file of the corpus
        assert not train & held_out and train | held_out == corpus
        assert set(items) - set(in_domain) == set(pool["media_id"])  # the rest is the pool
        # The table: every segment of the pool, and every in-domain item's segment(s) (a file without a speech
        # segment under the pool's segmentation gives none, as in the pool).
        table = load_segments(labels)
        stats = json.loads((labels / STATS_FILE).read_text())
        assert set(pool["segment_id"]) <= set(table["segment_id"])
        rows = table[table["media_id"].isin(in_domain)]
        assert set(rows["media_id"]) == set(in_domain) - set(stats["media_without_segments"])
        assert rows["media_id"].nunique() >= 0.75 * len(train) and len(table) == len(pool) + len(rows)
        # In-domain speakers are named apart from the pool's (whose names spk01, spk02 the synthetic corpus reuses).
        assert set(rows["speaker"]) == {SPEAKER_PREFIX + s for s in split.train["speaker"]}
        # One k-means over the union: the cluster sizes of the stats count every labelled segment, in-domain too.
        assert sum(stats["tasks"]["cluster"]["cluster_sizes"]) == table["cluster_mask"].sum() > len(pool)
        assert rows["cluster_mask"].all() and rows["energy_mask"].all() and rows["acoustic_mask"].all()
        record = json.loads((labels / RECORD_FILE).read_text())
        assert record["test_speakers"] == split.test_speakers and record["files"] == len(train)
        assert not set(record["train_speakers"]) & set(record["dev_speakers"] + record["test_speakers"])
        files = pd.read_csv(labels / FILES_FILE, dtype=str)
        assert {os.path.realpath(p) for p in files["path"]} == train


@pytest.mark.slow
@pytest.mark.parametrize("setup", ["synthetic"], indirect=True)
def test_a_fold_pretrains_and_the_grid_takes_the_fold_template(setup):
    template = TrainConfig(tasks=",".join(TASKS), encoder="cnn",
                           encoder_options={"channels": [8, 8], "dim": 16, "n_mels": 32}, max_steps=2,
                           batch_size=4, max_seconds=1.0, warmup_steps=0, eval_every=2, checkpoint_every=2,
                           log_every=1, num_workers=0, report_to="none")
    runs = pretrain_in_domain(str(setup["manifest"]), setup["pool_labels"], setup["work"], template, SETTINGS,
                              folds="0", pool_only=True, log=lambda *_: None)
    assert set(runs) == {"fold0", "pool"}
    saved = json.loads((runs["fold0"] / RUN_CONFIG_FILE).read_text())
    assert saved["data"] == str(setup["data"]["fold0"]) and saved["max_steps"] == 2  # the labels made above
    assert json.loads((runs["pool"] / RUN_CONFIG_FILE).read_text())["data"] == str(setup["pool_labels"])
    steps = [json.loads(line)["step"] for line in (runs["fold0"] / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 2
    load_pretrained(runs["fold0"] / "encoder")
    check_pretrained(str(setup["work"] / "{fold}" / "run"), ["fold0"])  # the grid's --pretrained WORK/{fold}/run
    with pytest.raises(ValueError, match="fold1"):
        check_pretrained(str(setup["work"] / "{fold}" / "run"), ["fold0", "fold1"])  # not trained here
    # A grid whose folds differ (2 folds, not 3) would test speakers this pretraining heard: refused before any cell.
    other = base_config(str(setup["manifest"]), ["num_folds=2", "dev_speakers=1"])
    _, (fold0, _) = load_splits(other)
    record = json.loads((setup["data"]["fold0"] / RECORD_FILE).read_text())
    assert set(record["train_speakers"]) & set(pd.concat([fold0.dev, fold0.test])["speaker"])
    with pytest.raises(ValueError, match=r"hold audio of speakers \['spk"):
        run_grid(other, str(setup["work"] / "{fold}" / "run"), setup["work"] / "grid", ["probe"], [1.0], [0], "0")
    assert not (setup["work"] / "grid").exists()
    check_pretraining_speakers(str(setup["work"] / "{fold}" / "run"), [s for s in load_splits(
        base_config(str(setup["manifest"]), SETTINGS))[1] if s.name == "fold0"])  # the folds it was made for


@pytest.mark.slow
@pytest.mark.parametrize("setup", ["synthetic"], indirect=True)
def test_a_second_stage_trains_on_the_fold_alone_from_the_pool_run(setup, tmp_path):
    """--continue-steps: the pool run first, then each fold's run from its encoder on the fold's files alone,
    with its own tasks (the acoustic task added here)."""
    template = TrainConfig(tasks="energy,cluster", encoder="cnn",
                           encoder_options={"channels": [8, 8], "dim": 16, "n_mels": 32}, max_steps=2,
                           batch_size=4, max_seconds=1.0, warmup_steps=0, eval_every=2, checkpoint_every=2,
                           log_every=1, num_workers=0, report_to="none")
    second = dataclasses.replace(template, max_steps=3, lr=1e-4, tasks=",".join(TASKS))
    work = tmp_path / "work"
    runs = pretrain_in_domain(str(setup["manifest"]), setup["pool_labels"], work, template, SETTINGS, folds="0",
                              second_stage=second, log=lambda *_: None)
    assert list(runs) == ["fold0", "pool"]
    pool_run = json.loads((runs["pool"] / RUN_CONFIG_FILE).read_text())
    assert pool_run["data"] == str(setup["pool_labels"]) and pool_run["max_steps"] == 2 and not pool_run["init_encoder"]
    fold_run = json.loads((runs["fold0"] / RUN_CONFIG_FILE).read_text())
    assert fold_run["init_encoder"] == str((runs["pool"] / "encoder").resolve())
    assert fold_run["max_steps"] == 3 and fold_run["lr"] == 1e-4 and fold_run["tasks"] == ",".join(TASKS)
    assert pool_run["tasks"] == "energy,cluster"
    # The fold's data: its training files only, none of the pool (the union's labels of the setup hold both).
    labels = work / "fold0" / "labels"
    table, pool = load_segments(labels), load_segments(setup["pool_labels"])
    assert not set(table["media_id"]) & set(pool["media_id"]) and table["acoustic_mask"].any()
    assert set(table["speaker"]) <= {SPEAKER_PREFIX + s for s in pd.read_csv(labels / FILES_FILE, dtype=str)[
        "manifest_speaker"]}
    record = json.loads((labels / RECORD_FILE).read_text())
    assert record["pool_media"] == 0 and record["continued_from"] == fold_run["init_encoder"]
    check_pretrained(str(work / "{fold}" / "run"), ["fold0"])
    check_pretraining_speakers(str(work / "{fold}" / "run"), [s for s in load_splits(
        base_config(str(setup["manifest"]), SETTINGS))[1] if s.name == "fold0"])
    # Rerun: everything is kept (the record matches, the encoders are exported).
    mtime = (runs["fold0"] / "encoder" / "model.safetensors").stat().st_mtime
    pretrain_in_domain(str(setup["manifest"]), setup["pool_labels"], work, template, SETTINGS, folds="0",
                       second_stage=second, log=lambda *_: None)
    assert (runs["fold0"] / "encoder" / "model.safetensors").stat().st_mtime == mtime


def test_bad_input_gets_one_line(tmp_path, capsys):
    """No speaker column, a missing pool folder, a face task: exit 2 with one line naming the problem."""
    manifest = synthetic.write_labeled_speech(tmp_path / "corpus", speakers=4, per_class=1, duration_s=1.0)
    rows = pd.read_csv(manifest, dtype=str).drop(columns="speaker")
    no_speaker = tmp_path / "no_speaker.csv"
    rows.to_csv(no_speaker, index=False)
    cases = {("--manifest", str(no_speaker), "--pool-labels", str(tmp_path)): "speaker",
             ("--manifest", str(manifest), "--pool-labels", str(tmp_path / "absent")): "absent: no such folder",
             ("--manifest", str(manifest), "--pool-labels", str(tmp_path)): "no segments.parquet",
             ("--manifest", str(manifest), "--pool-labels", str(tmp_path), "--tasks", "energy,face"):
                 "['face'] need faces"}
    for args, expected in cases.items():
        assert main([*args, "--work", str(tmp_path / "work"), "--set", "num_folds=2", "--set", "dev_speakers=1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err and err.startswith("experiments/in_domain.py: error:"), err
    assert not (tmp_path / "work").exists()  # refused before anything was written
