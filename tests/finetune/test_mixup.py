"""Mixup (Zhang et al., ICLR 2018; in SER, Latif et al. use it to augment a GAN): mixed inputs, targets mixed
the same way, a run that trains with it and repeats."""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from avpretext.common.metrics import concordance
from encoders import build_encoder, save_pretrained
from finetune.experiment import base_config, run_grid, setting_differences
from finetune.config import FinetuneConfig
from finetune.data import Targets
from finetune.losses import mix_batch, mixup_loss
from finetune.model import SERModel
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
    mixed = torch.tensor([0.5, 1.5, 1.0])  # item 3 is unlabelled: it and its pairs' mix drop out
    assert torch.allclose(loss, 1 - concordance(pred[:3, 0], mixed, eps=1e-8), atol=1e-6)


def _history(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "fold0" / "history.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_mixup_run_trains_repeats_and_refuses_a_negative_alpha(tmp_path, manifest):
    base = dict(manifest=str(manifest), encoder="cnn", encoder_options=TINY, epochs=2, num_folds=3, fold="0",
                lr=3e-3, max_seconds=2.0, batch_size=8, num_workers=0, progress=False, save_model=False,
                mixup_alpha=0.4)
    first = run(FinetuneConfig(out=str(tmp_path / "a"), **base))
    second = run(FinetuneConfig(out=str(tmp_path / "b"), **base))
    assert np.isfinite(first["pooled"]["uar"]) and first["pooled"] == second["pooled"]
    plain = run(FinetuneConfig(out=str(tmp_path / "c"), **(base | {"mixup_alpha": 0.0})))
    # the option changes the training
    assert _history(tmp_path / "a")[0]["train_loss"] != _history(tmp_path / "c")[0]["train_loss"]
    assert plain["pooled"]["count"] == first["pooled"]["count"]
    log_mel = run(FinetuneConfig(out=str(tmp_path / "d"), **(base | {"mixup_input": "log_mel"})))
    assert np.isfinite(log_mel["pooled"]["uar"])  # same pairs and weights as "a", mixed after the front end
    assert _history(tmp_path / "d")[0]["train_loss"] != _history(tmp_path / "a")[0]["train_loss"]
    with pytest.raises(ValueError, match="--mixup-alpha -1.0: must be >= 0"):
        run(FinetuneConfig(out=str(tmp_path / "e"), **(base | {"mixup_alpha": -1.0})))


def test_log_mel_mixup_mixes_the_front_end_output_of_each_pair():
    """lam = 0 hands each item its partner's log-mel input whole (the longer length kept), lam = 1 leaves the
    batch as it is: the mix happens between the encoder's front end and its body."""
    torch.manual_seed(0)
    model = SERModel(build_encoder("cnn", **TINY), num_outputs=3).eval()
    wavs = torch.zeros(2, 24000)
    wavs[0, :12000], wavs[1] = 0.1 * torch.randn(12000), 0.1 * torch.randn(24000)
    batch = {"wavs": wavs, "lengths": torch.tensor([12000, 24000])}
    with torch.no_grad():
        plain = model.embed(batch)
        swapped = model.embed(batch, mix=(0.0, torch.tensor([1, 0])))
        kept = model.embed(batch, mix=(1.0, torch.tensor([1, 0])))
        half = model.embed(batch, mix=(0.5, torch.tensor([1, 0])))
    torch.testing.assert_close(swapped[0], plain[1])  # item 0 became item 1 (the longer of the two)
    torch.testing.assert_close(kept[1], plain[1])
    assert not torch.allclose(half[0], plain[0]) and not torch.allclose(half[0], plain[1])


@pytest.mark.parametrize("change, message", [
    ({"mixup_input": "mel"}, "--mixup-input 'mel': choose from waveform, log_mel"),
    ({"mode": "probe"}, "--mixup-input log_mel needs --mode finetune"),
    ({"chunk_seconds": 1.0}, "cannot be combined with --chunk-seconds"),
    ({"encoder": "crnn", "encoder_options": {}}, "the crnn encoder has no log-mel front end"),
])
def test_log_mel_mixup_refuses_what_it_cannot_do_before_any_work(tmp_path, manifest, change, message):
    settings = dict(manifest=str(manifest), out=str(tmp_path / "out"), encoder="cnn", encoder_options=TINY,
                    mixup_alpha=0.4, mixup_input="log_mel", progress=False)
    config = FinetuneConfig(**(settings | change))
    with pytest.raises(ValueError, match=re.escape(message)):
        run(config)
    assert not (tmp_path / "out").exists()


def test_a_recorded_config_without_an_option_counts_as_its_default():
    """A finished cell's recorded config without a field (here mixup_alpha) counts as that field's default
    (off): only a rerun that turns the option on differs."""
    config = FinetuneConfig(manifest="m.csv", mode="probe")
    old = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(config))).items() if k != "mixup_alpha"}
    assert setting_differences(old, config) == []
    assert setting_differences(old, dataclasses.replace(config, mixup_alpha=0.2)) == ["mixup_alpha: 0.0 -> 0.2"]


def test_the_grid_refuses_log_mel_mixup_for_a_waveform_encoder_before_any_cell(tmp_path, manifest):
    save_pretrained(build_encoder("crnn"), tmp_path / "crnn")
    base = base_config(str(manifest), ["mixup_alpha=0.4", "mixup_input=log_mel", "num_folds=2", "progress=false"])
    with pytest.raises(ValueError, match="the crnn encoder has no log-mel front end"):
        run_grid(base, str(tmp_path / "crnn"), tmp_path / "grid", ["finetune"], [1.0], [0])
    assert not (tmp_path / "grid").exists()
