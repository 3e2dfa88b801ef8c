"""DeepEmoCluster's semi-supervised form in fine-tuning (finetune.auxiliary, --cluster-weight): k-means
pseudo-classes of the model's own embeddings of every training row, re-made every N epochs with the cluster head
re-initialised, a cluster loss beside the emotion loss on the labelled rows. On the synthetic speech corpus."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from avpretext.common.batches import collate, SegmentDataset
from encoders import build_encoder, save_pretrained
from finetune.auxiliary import (add_aux_columns, CLUSTER, cluster_rounds, embed_rows, hide_unlabelled, LABELLED,
                                training_rows)
from finetune.config import FinetuneConfig
from finetune.experiment import run_grid
from finetune.data import probe_durations, resolve_targets, segment_table
from finetune.loop import _training_loss
from finetune.model import SERModel
from finetune.recipes import load_manifest
from finetune.splits import label_subset
from finetune.train import run
from pretext.deep_cluster import cluster_nmi, round_scores
from pretext.tasks.cluster import cluster_table

TINY = {"channels": [8, 16, 32], "dim": 32, "n_mels": 40}
K = 4


def _base(manifest, **overrides):
    return dict(manifest=str(manifest), encoder="cnn", encoder_options=TINY, epochs=3, num_folds=3, fold="0",
                lr=3e-3, max_seconds=2.0, batch_size=8, num_workers=0, progress=False, label_fraction=0.1,
                cluster_weight=0.5, cluster_k=K) | overrides


@pytest.mark.parametrize("overrides,message", [
    ({"label_fraction": 1.0}, r"--cluster-weight 0.5 trains on the unlabelled training rows, and at "
                              r"--label-fraction 1.0 there are none"),
    ({"cluster_k": 1}, "--cluster-k 1: need at least 2 clusters"),
    ({"recluster_every": 0}, "--recluster-every 0: must be >= 1"),
    ({"cluster_weight": -0.5}, "--cluster-weight -0.5: must be >= 0"),
    ({"mode": "probe"}, "--cluster-weight need --mode finetune"),
])
def test_cluster_option_mistakes_are_refused_before_training(manifest, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        run(FinetuneConfig(out=str(tmp_path / "out"), **_base(manifest, **overrides)))
    assert not (tmp_path / "out").exists()


def test_nmi_is_one_for_the_same_partition_and_zero_for_an_independent_one():
    classes = pd.Series(["a", "a", "b", "b", ""])  # the unknown one is left out
    assert cluster_nmi(np.array([1, 1, 0, 0, 0]), classes) == pytest.approx(1.0)
    assert cluster_nmi(np.array([0, 1, 0, 1, 0]), classes) == pytest.approx(0.0, abs=1e-12)
    assert cluster_nmi(np.array([0, 1, 0, 1, 0]), pd.Series(["a"] * 5)) is None


@pytest.fixture
def training_set(manifest):
    """Fold 0's two training speakers (32 clips), a tenth of the labels, the cluster task on: the segment
    table, its manifest rows, the targets."""
    rows = load_manifest(str(manifest))
    train = rows[rows["speaker"].isin(sorted(rows["speaker"].unique())[:2])]
    labelled = label_subset(train, 0.1, 0)
    mixed = training_rows(train, labelled, {CLUSTER: 0.5})
    targets = resolve_targets(rows)
    probed = probe_durations(mixed, False)[0]
    table, classes = add_aux_columns(segment_table(probed, targets), probed, [CLUSTER], K)
    assert classes == {CLUSTER: K} and not table["cluster_mask"].any()  # unlabelled until round 0
    return hide_unlabelled(table, probed, targets.names), probed, targets


def _rounds(manifest, table, out, **overrides):
    config = FinetuneConfig(**_base(manifest, **overrides))
    dataset = SegmentDataset(table, ["emotion", CLUSTER], 2.0, False)
    return config, dataset, cluster_rounds(config, dataset, out, 2.0)


@pytest.mark.slow
def test_unlabelled_rows_reach_the_cluster_loss_but_not_the_emotion_loss(manifest, training_set, tmp_path):
    from accelerate import Accelerator

    table, probed, targets = training_set
    torch.manual_seed(0)
    model = SERModel(build_encoder("cnn", **TINY), targets.num_outputs, aux_classes={CLUSTER: K})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    _, dataset, rounds = _rounds(manifest, table, tmp_path)
    facts = rounds.run_round(Accelerator(cpu=True), model, optimizer, 0, 0)
    # Every training row, labelled or not, has a pseudo-class; 4 of 32 have an emotion.
    assert facts["round"] == 0 and sum(facts["cluster_sizes"]) == len(table) == 32
    assert dataset.masks[CLUSTER].all() and set(dataset.labels[CLUSTER].tolist()) == set(range(K))
    assert dataset.masks["emotion"].tolist() == probed[LABELLED].tolist() and dataset.masks["emotion"].sum() == 4

    model.eval()  # no dropout: the loss below and the reference see the same function
    batch = collate([dataset[i] for i in range(len(dataset))])
    loss = _training_loss(model, batch, targets, None, {CLUSTER: 0.5}, None, None)
    outputs, aux = model(batch, aux=True)
    ce = torch.nn.functional.cross_entropy
    emotion = batch["masks"]["emotion"]
    expected = (ce(outputs[emotion], batch["labels"]["emotion"][emotion])
                + 0.5 * ce(aux[CLUSTER], batch["labels"][CLUSTER]))  # the cluster term over all 32 rows
    assert torch.allclose(loss, expected, atol=1e-5)
    # A batch of unlabelled rows only: no gradient for the emotion head; the cluster head and encoder get one.
    unlabelled = torch.nonzero(~emotion).squeeze(1)[:8]
    sub = {"wavs": batch["wavs"][unlabelled], "lengths": batch["lengths"][unlabelled],
           "labels": {t: v[unlabelled] for t, v in batch["labels"].items()},
           "masks": {t: v[unlabelled] for t, v in batch["masks"].items()}}
    model.zero_grad()
    _training_loss(model, sub, targets, None, {CLUSTER: 0.5}, None, None).backward()
    assert model.head[-1].weight.grad is None or not model.head[-1].weight.grad.any()
    assert model.aux[CLUSTER][-1].weight.grad.abs().sum() > 0
    assert next(model.encoder.parameters()).grad.abs().sum() > 0


@pytest.mark.slow
def test_each_round_clusters_the_current_models_embeddings_and_re_initialises_the_cluster_head(
        manifest, training_set, tmp_path):
    from accelerate import Accelerator

    table, _, targets = training_set
    torch.manual_seed(0)
    model = SERModel(build_encoder("cnn", **TINY), targets.num_outputs, aux_classes={CLUSTER: K})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    config, dataset, rounds = _rounds(manifest, table, tmp_path, recluster_every=2)
    accelerator = Accelerator(cpu=True)
    rounds.run_round(accelerator, model, optimizer, 0, 0)
    first = dataset.labels[CLUSTER].clone()
    model.train()
    batch = collate([dataset[i] for i in range(len(dataset))])
    for _ in range(5):  # the encoder moves: the next round sees other embeddings
        _training_loss(model, batch, targets, None, {CLUSTER: 0.5}, None, None).backward()
        optimizer.step()
        optimizer.zero_grad()
    trained = [p.detach().clone() for p in model.aux[CLUSTER].parameters()]
    assert rounds.after_epoch(accelerator, model, optimizer, 1) is None  # not due after 1 epoch of 2
    facts = rounds.after_epoch(accelerator, model, optimizer, 2)
    assert facts["round"] == 1 and facts["epoch"] == 2
    assert all(not torch.equal(a, b) for a, b in zip(trained, model.aux[CLUSTER].parameters()))  # fresh head
    assert all(p not in optimizer.state for p in model.aux[CLUSTER].parameters())  # and no Adam moments
    assert all(p in optimizer.state for p in model.encoder.parameters())
    # The round is k-means of the trained model's own embeddings (seeded per round), applied to the dataset.
    features = embed_rows(model, table, torch.device("cpu"), 2.0, config.batch_size)
    cfg = dataclasses.replace(rounds.cfg, seed=rounds.cfg.seed + 1)
    expected, _ = cluster_table(table, features, table["cluster_valid"], cfg)
    saved = pd.read_parquet(tmp_path / "clusters" / "round_001.parquet")
    np.testing.assert_array_equal(saved["cluster_label"], expected["cluster_label"])
    assert torch.equal(dataset.labels[CLUSTER], torch.tensor(expected["cluster_label"].to_numpy()))
    assert not torch.equal(dataset.labels[CLUSTER], first)


@pytest.mark.slow
def test_a_run_re_clusters_every_epoch_and_saves_a_model_without_the_cluster_head(manifest, tmp_path):
    fold = tmp_path / "cluster" / "fold0"
    (fold / "clusters").mkdir(parents=True)  # an earlier, longer run's round in the same folder (a rerun)
    for suffix in (".json", ".parquet"):
        (fold / "clusters" / f"round_007{suffix}").write_text("{}")
    summary = run(FinetuneConfig(out=str(tmp_path / "cluster"), **_base(manifest)))
    assert sorted(p.name for p in (fold / "clusters").iterdir()) == \
        [f"round_{n:03d}{suffix}" for n in range(3) for suffix in (".json", ".parquet")]
    metrics = json.loads((fold / "metrics.json").read_text())
    # Round 0 before epoch 1, one after epochs 1 and 2, none after the last epoch (nothing would train on it).
    assert [r["epoch"] for r in metrics["cluster_rounds"]] == [0, 1, 2] and np.isfinite(summary["pooled"]["uar"])
    assert metrics["train_items"] == 32 and metrics["train_labelled_items"] == 4
    rounds = [pd.read_parquet(fold / "clusters" / f"round_{n:03d}.parquet") for n in range(3)]
    assert all(r["cluster_mask"].all() and set(r["cluster_label"]) == set(range(K)) for r in rounds)
    assert any((a["cluster_label"] != b["cluster_label"]).any() for a, b in zip(rounds, rounds[1:]))
    plain = run(FinetuneConfig(out=str(tmp_path / "plain"), **_base(manifest, cluster_weight=0.0)))
    assert plain["pooled"]["count"] == summary["pooled"]["count"]
    assert sorted(p.name for p in (fold / "model").iterdir()) == \
        sorted(p.name for p in (tmp_path / "plain" / "fold0" / "model").iterdir())
    # Purity per round against the (hidden) emotions of the training rows, as docs/results/deep_cluster reports.
    rows = load_manifest(str(manifest))
    classes = pd.Series(dict(zip(rows["path"].astype(str), rows["label"])))  # rounds name rows by their path
    scores = round_scores(fold, classes)
    assert scores["round"].tolist() == [0, 1, 2] and (scores["segments"] == 32).all()
    assert ((scores["purity"] >= scores["purity_chance"]) & (scores["purity"] <= 1)).all()
    assert scores["nmi"].between(0, 1).all()


@pytest.mark.slow
def test_a_grid_of_cells_below_fraction_1_takes_the_cluster_loss_and_one_with_a_100_percent_cell_is_refused(
        manifest, tmp_path):
    """The grid checks the cluster option at its own fractions, not at the base config's label_fraction (1.0),
    which refused every semi-supervised grid before its first cell."""
    save_pretrained(build_encoder("cnn", **TINY), tmp_path / "encoder")
    base = FinetuneConfig(**_base(manifest, epochs=1, label_fraction=1.0, fold="all"))
    with pytest.raises(ValueError, match="at --label-fraction 1.0 there are none"):
        run_grid(base, str(tmp_path / "encoder"), tmp_path / "refused", ["finetune"], [0.25, 1.0], [0], "0")
    assert not (tmp_path / "refused").exists()
    table = run_grid(base, str(tmp_path / "encoder"), tmp_path / "grid", ["finetune"], [0.25], [0], "0",
                     log=lambda *_: None)
    assert sorted(table["init"]) == ["pretrained", "scratch"] and (table["fraction"] == 0.25).all()
    for init in ("pretrained", "scratch"):
        cell = tmp_path / "grid" / "cells" / f"finetune-{init}-f0.25-fold0-s0"
        metrics = json.loads((cell / "metrics.json").read_text())
        assert [r["epoch"] for r in metrics["cluster_rounds"]] == [0]  # the cluster loss ran (one epoch)
