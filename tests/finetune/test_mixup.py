"""Mixup (Latif et al.): mixed inputs, targets mixed the same way, a run that trains with it and repeats."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avpretext import synthetic
from finetune.config import FinetuneConfig
from finetune.data import Targets
from finetune.losses import mix_batch, mixup_loss
from finetune.recipes import prepare_csv, write_manifest
from finetune.train import run

TINY = {"channels": [8, 16, 32], "dim": 32, "n_mels": 40}


def test_mixed_classes_loss_is_cross_entropy_against_the_soft_target():
    targets = Targets(class_names=["a", "b", "c"], dimensions=[])
    logits = torch.randn(4, 3)
    labels = torch.tensor([0, 1, 2, 1])
    perm = torch.tensor([2, 0, 3, 1])
    batch = {"labels": {"emotion": labels}, "masks": {"emotion": torch.ones(4, dtype=torch.bool)}}
    soft = 0.7 * torch.nn.functional.one_hot(labels, 3) + 0.3 * torch.nn.functional.one_hot(labels[perm], 3)
    expected = torch.nn.functional.cross_entropy(logits, soft.float())
    assert torch.allclose(mixup_loss(logits, batch, 0.7, perm, targets, None), expected, atol=1e-6)


def test_mixed_waveforms_keep_the_longer_length_and_dimensions_mix_their_targets():
    wavs = torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    batch = {"wavs": wavs, "lengths": torch.tensor([2, 4])}
    mixed = mix_batch(batch, 0.25, torch.tensor([1, 0]))
    assert torch.allclose(mixed["wavs"][0], torch.tensor([1.75, 1.75, 1.5, 1.5]))
    assert mixed["lengths"].tolist() == [4, 4] and batch["wavs"] is wavs  # the input batch is left alone
    emb = mix_batch({"embeddings": torch.eye(2)}, 0.5, torch.tensor([1, 0]))["embeddings"]
    assert torch.allclose(emb, torch.full((2, 2), 0.5))

    targets = Targets(class_names=[], dimensions=["arousal"])
    pred = torch.tensor([[0.1], [0.5], [0.9], [0.3]])
    labels = torch.tensor([0.0, 1.0, 2.0, 3.0])
    batch = {"labels": {"arousal": labels}, "masks": {"arousal": torch.tensor([True, True, True, False])}}
    perm = torch.tensor([1, 2, 0, 0])
    loss = mixup_loss(pred, batch, 0.5, perm, targets, None)
    from avpretext.common.metrics import concordance
    mixed = torch.tensor([0.5, 1.5, 1.0])  # item 3 is unlabelled: it and its pairs' mix drop out
    assert torch.allclose(loss, 1 - concordance(pred[:3, 0], mixed, eps=1e-8), atol=1e-6)


def test_a_mixup_run_trains_repeats_and_refuses_a_negative_alpha(tmp_path):
    root = tmp_path / "labelled"
    rows = prepare_csv(synthetic.write_labeled_speech(root / "speech", speakers=6, per_class=4),
                       gender_column="gender", split_column="split", fold_column="fold")
    manifest = write_manifest(rows, root / "m.csv")
    base = dict(manifest=str(manifest), encoder="cnn", encoder_options=TINY, epochs=2, num_folds=3, fold="0",
                lr=3e-3, max_seconds=2.0, batch_size=8, num_workers=0, progress=False, save_model=False,
                mixup_alpha=0.4)
    first = run(FinetuneConfig(out=str(tmp_path / "a"), **base))
    second = run(FinetuneConfig(out=str(tmp_path / "b"), **base))
    assert np.isfinite(first["pooled"]["uar"]) and first["pooled"] == second["pooled"]
    history = [json.loads(line) for line in (tmp_path / "a" / "fold0" / "history.jsonl").read_text().splitlines()]
    plain = run(FinetuneConfig(out=str(tmp_path / "c"), **(base | {"mixup_alpha": 0.0})))
    plain_history = [json.loads(line) for line in (tmp_path / "c" / "fold0" / "history.jsonl").read_text().splitlines()]
    assert history[0]["train_loss"] != plain_history[0]["train_loss"]  # the option changes the training
    assert plain["pooled"]["count"] == first["pooled"]["count"]
    with pytest.raises(ValueError, match="--mixup-alpha -1.0: must be >= 0"):
        run(FinetuneConfig(out=str(tmp_path / "d"), **(base | {"mixup_alpha": -1.0})))


def test_a_cell_recorded_before_an_option_existed_counts_as_its_default():
    """Grids finished before --mixup-alpha existed stay valid: the missing field means the default (off), and
    only a rerun that turns the option on differs."""
    import dataclasses

    from finetune.experiment import setting_differences

    config = FinetuneConfig(manifest="m.csv", mode="probe")
    old = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(config))).items() if k != "mixup_alpha"}
    assert setting_differences(old, config) == []
    assert setting_differences(old, dataclasses.replace(config, mixup_alpha=0.2)) == ["mixup_alpha: 0.0 -> 0.2"]
