"""Auxiliary speaker/gender tasks, semi-supervised (Latif et al.), and adversarial speaker removal (gradient
reversal)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from avpretext.common.batches import collate, SegmentDataset
from encoders import build_encoder
from finetune.auxiliary import (add_aux_columns, aux_loss, hide_unlabelled, LABELLED, reverse_gradient,
                                training_rows)
from finetune.config import FinetuneConfig
from finetune.data import probe_durations, resolve_targets, segment_table
from finetune.loop import _training_loss
from finetune.model import SERModel, load_model
from finetune.recipes import load_manifest
from finetune.splits import label_subset
from finetune.train import run

TINY = {"channels": [8, 16, 32], "dim": 32, "n_mels": 40}


def test_gradient_reversal_negates_and_scales_the_gradient_only():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-1.5, -2.0]))


def test_speaker_ids_come_from_the_training_rows_and_unknown_genders_are_masked():
    rows = pd.DataFrame({"speaker": ["07", "03", "07", "11"], "gender": ["female", "male", "", "female"]})
    table, classes = add_aux_columns(pd.DataFrame({"audio_path": list("abcd")}), rows, ["speaker", "gender"])
    assert classes == {"speaker": 3, "gender": 2}
    assert table["speaker_label"].tolist() == [1, 0, 1, 2] and table["speaker_mask"].all()
    assert table["gender_mask"].tolist() == [True, True, False, True]
    assert table["gender_label"][table["gender_mask"]].tolist() == [0, 1, 0]


def test_aux_loss_weights_each_task_and_mixes_targets_like_mixup():
    logits = {"speaker": torch.randn(4, 3), "gender": torch.randn(4, 2)}
    batch = {"labels": {"speaker": torch.tensor([0, 1, 2, 1]), "gender": torch.tensor([0, 1, 0, 0])},
             "masks": {"speaker": torch.ones(4, dtype=torch.bool), "gender": torch.tensor([True, True, True, False])}}
    ce = torch.nn.functional.cross_entropy
    plain = aux_loss(logits, batch, {"speaker": 0.5, "gender": 2.0})
    expected = 0.5 * ce(logits["speaker"], batch["labels"]["speaker"]) + 2.0 * ce(logits["gender"][:3],
                                                                                  batch["labels"]["gender"][:3])
    assert torch.allclose(plain, expected, atol=1e-6)
    perm = torch.tensor([1, 0, 3, 2])
    mixed = aux_loss(logits, batch, {"speaker": 1.0}, 0.7, perm)
    soft = 0.7 * torch.nn.functional.one_hot(batch["labels"]["speaker"], 3) \
        + 0.3 * torch.nn.functional.one_hot(batch["labels"]["speaker"][perm], 3)
    assert torch.allclose(mixed, ce(logits["speaker"], soft.float()), atol=1e-6)


@pytest.mark.slow
def test_the_adversarial_head_pushes_the_encoder_the_opposite_way():
    torch.manual_seed(0)
    batch = {"wavs": torch.randn(2, 16000), "lengths": torch.tensor([16000, 16000])}
    grads = []
    for adversarial in ((), ("speaker",)):
        torch.manual_seed(0)
        model = SERModel(build_encoder("cnn", **TINY), 4, aux_classes={"speaker": 3}, adversarial=adversarial)
        model.eval()  # no dropout: both passes compute the same function
        _, aux = model(batch, aux=True)
        aux["speaker"][:, 0].sum().backward()
        grads.append(next(model.encoder.parameters()).grad.clone())
    assert torch.allclose(grads[0], -grads[1], atol=1e-6) and grads[0].abs().sum() > 0


def _base(manifest, **overrides):
    return dict(manifest=str(manifest), encoder="cnn", encoder_options=TINY, epochs=2, num_folds=3, fold="0",
                lr=3e-3, max_seconds=2.0, batch_size=8, num_workers=0, progress=False, save_model=True) | overrides


@pytest.mark.slow
def test_a_run_with_auxiliary_tasks_trains_and_saves_a_model_without_them(manifest, tmp_path):
    base = _base(manifest)
    plain = run(FinetuneConfig(out=str(tmp_path / "plain"), **base))
    aux = run(FinetuneConfig(out=str(tmp_path / "aux"), **base, speaker_weight=0.3, gender_weight=0.3,
                             speaker_adversarial=True))
    assert np.isfinite(aux["pooled"]["uar"]) and aux["pooled"]["count"] == plain["pooled"]["count"]
    loss = lambda name: json.loads((tmp_path / name / "fold0" / "history.jsonl").read_text().splitlines()[0])  # noqa: E731
    assert loss("aux")["train_loss"] != loss("plain")["train_loss"]  # the auxiliary losses are in the objective
    model, targets = load_model(tmp_path / "aux" / "fold0" / "model")  # the model folder of a plain run
    assert len(model.aux) == 0 and targets.class_names == aux["classes"]
    assert sorted(p.name for p in (tmp_path / "aux" / "fold0" / "model").iterdir()) == \
        sorted(p.name for p in (tmp_path / "plain" / "fold0" / "model").iterdir())


@pytest.mark.parametrize("overrides,message", [
    ({"speaker_weight": -1.0}, "--speaker-weight -1.0: must be >= 0"),
    ({"speaker_adversarial": True}, "--speaker-adversarial needs --speaker-weight > 0"),
    ({"gender_weight": 0.5, "mode": "probe"}, "need --mode finetune"),
])
def test_auxiliary_option_mistakes_are_refused_before_training(manifest, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        run(FinetuneConfig(out=str(tmp_path / "out"), **_base(manifest, **overrides)))
    assert not (tmp_path / "out").exists()


def test_gender_weight_without_known_genders_names_the_manifest(manifest, tmp_path):
    table = pd.read_csv(manifest, dtype=str, keep_default_na=False).assign(gender="")
    table.to_csv(tmp_path / "nogender.csv", index=False)
    with pytest.raises(ValueError, match=r"nogender.csv: --gender-weight needs a 'gender' column with at least "
                                         r"two values \(found none\)"):
        run(FinetuneConfig(out=str(tmp_path / "out"), **_base(tmp_path / "nogender.csv", gender_weight=0.5)))


@pytest.mark.slow
def test_at_a_tenth_of_the_labels_the_auxiliary_heads_train_on_every_training_row(manifest, tmp_path):
    """Semi-supervised (Latif et al., IEEE TAC 2022): speaker and gender are known for every training row, emotion
    for 10%."""
    for name, extra in (("aux", {}), ("adversarial", {"speaker_adversarial": True})):
        run(FinetuneConfig(out=str(tmp_path / name), **_base(manifest, epochs=1, label_fraction=0.1,
                                                               speaker_weight=0.3, gender_weight=0.3, **extra)))
        fold = json.loads((tmp_path / name / "fold0" / "metrics.json").read_text())
        # fold 0 trains on 2 speakers x 16 clips; 10% of each class's 8 clips rounds to 1 labelled clip per class.
        assert fold["train_items"] == 32 and fold["train_labelled_items"] == 4, name
    plain = run(FinetuneConfig(out=str(tmp_path / "plain"), **_base(manifest, epochs=1, label_fraction=0.1)))
    fold = json.loads((tmp_path / "plain" / "fold0" / "metrics.json").read_text())
    assert fold["train_items"] == fold["train_labelled_items"] == 4 and plain["pooled"]["count"] > 0


@pytest.mark.slow
def test_unlabelled_rows_reach_the_auxiliary_losses_but_not_the_emotion_loss(manifest):
    rows = load_manifest(str(manifest))
    train = rows[rows["speaker"].isin(sorted(rows["speaker"].unique())[:2])]
    labelled = label_subset(train, 0.1, 0)
    weights = {"speaker": 0.5, "gender": 2.0}
    mixed = training_rows(train, labelled, weights)
    assert len(mixed) == len(train) and mixed[LABELLED].sum() == len(labelled) == 4
    assert training_rows(train, labelled, {}) is labelled  # no auxiliary task: only the labelled rows
    targets = resolve_targets(rows)
    probed = probe_durations(mixed, False)[0]
    table, classes = add_aux_columns(segment_table(probed, targets), probed, weights)
    table = hide_unlabelled(table, probed, targets.names)
    assert table["emotion_mask"].tolist() == probed[LABELLED].tolist() and table["speaker_mask"].all()
    assert (table.loc[~table["emotion_mask"], "emotion_label"] == 0).all()  # no hidden emotion in a batch

    torch.manual_seed(0)
    model = SERModel(build_encoder("cnn", **TINY), targets.num_outputs, aux_classes=classes).eval()
    dataset = SegmentDataset(table, [*targets.names, *weights], 1.0, False)
    batch = collate([dataset[i] for i in range(len(dataset))])  # every row: 4 labelled, 28 not
    loss = _training_loss(model, batch, targets, None, weights, None, None)
    outputs, aux = model(batch, aux=True)
    ce = torch.nn.functional.cross_entropy
    emotion = batch["masks"]["emotion"]
    expected = (ce(outputs[emotion], batch["labels"]["emotion"][emotion])
                + 0.5 * ce(aux["speaker"], batch["labels"]["speaker"])
                + 2.0 * ce(aux["gender"], batch["labels"]["gender"]))
    assert emotion.sum() == 4 and torch.allclose(loss, expected, atol=1e-5)
    # A batch of unlabelled rows only: the emotion head gets no gradient, the auxiliary heads and encoder do.
    unlabelled = torch.nonzero(~emotion).squeeze(1)[:8]
    sub = {"wavs": batch["wavs"][unlabelled], "lengths": batch["lengths"][unlabelled],
           "labels": {t: v[unlabelled] for t, v in batch["labels"].items()},
           "masks": {t: v[unlabelled] for t, v in batch["masks"].items()}}
    _training_loss(model, sub, targets, None, weights, None, None).backward()
    assert not model.head[-1].weight.grad.any() and model.aux["speaker"][-1].weight.grad.abs().sum() > 0
    assert next(model.encoder.parameters()).grad.abs().sum() > 0
