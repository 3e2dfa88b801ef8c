"""Utterance pooling of the encoders (encoders.base): mean, statistics and attentive statistics pooling; padding
invariance, saved folders (old ones without the option too), and fine-tuning and the probe on real audio files."""
from __future__ import annotations

import json

import pytest
import torch

from encoders import ENCODERS, build_encoder, load_pretrained, save_pretrained
from finetune.model import load_model
from finetune.train import run
from tests.finetune.test_finetune import _config
from tests.test_encoders import SMALL, _batch


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("pooling", ["stats", "attentive_stats"])
def test_statistics_pooling_is_mean_and_std_of_the_valid_frames_whatever_the_padding(name, pooling):
    torch.manual_seed(0)
    encoder = build_encoder(name, **SMALL[name], pooling=pooling).eval()
    wavs, lengths = _batch([16000, 24000])
    with torch.no_grad():
        out = encoder(wavs, lengths)
        alone = encoder(wavs[:1, :16000], lengths[:1])
    dim = encoder.frame_dim
    assert encoder.output_dim == 2 * dim and out.pooled.shape == (2, 2 * dim) and out.frames.shape[2] == dim
    torch.testing.assert_close(out.pooled[:1], alone.pooled, atol=1e-4, rtol=1e-4)
    valid = out.frames[0, : int(out.lengths[0])]
    if pooling == "stats":
        torch.testing.assert_close(out.pooled[0, :dim], valid.mean(0), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out.pooled[0, dim:], valid.std(0, unbiased=False).clamp(min=1e-3),
                                   atol=1e-3, rtol=1e-3)
    else:  # weighted: not the plain mean, but inside the range of the valid frames
        assert not torch.allclose(out.pooled[0, :dim], valid.mean(0), atol=1e-6)
        assert (out.pooled[0, :dim] <= valid.max(0).values + 1e-5).all()
        assert (out.pooled[0, :dim] >= valid.min(0).values - 1e-5).all()


def test_attentive_pooling_is_saved_with_the_encoder_and_old_folders_load_as_mean(tmp_path):
    torch.manual_seed(0)
    encoder = build_encoder("cnn", **SMALL["cnn"], pooling="attentive_stats").eval()
    assert any(k.startswith("pooling.") for k in encoder.state_dict())
    save_pretrained(encoder, tmp_path / "attentive")
    assert json.loads((tmp_path / "attentive" / "config.json").read_text())["pooling"] == "attentive_stats"
    wavs, lengths = _batch([16000, 12000])
    with torch.no_grad():
        torch.testing.assert_close(load_pretrained(tmp_path / "attentive").eval()(wavs, lengths).pooled,
                                   encoder(wavs, lengths).pooled)
    # A folder saved before the option existed: no "pooling" in its config; it loads as it was, the mean.
    mean = build_encoder("cnn", **SMALL["cnn"]).eval()
    save_pretrained(mean, tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["pooling"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    old = load_pretrained(tmp_path / "old")
    assert old.pooling is None and old.output_dim == SMALL["cnn"]["dim"]


def test_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="pooling 'max'"):
        build_encoder("cnn", pooling="max")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["finetune", "probe"])
def test_fine_tuning_and_probe_train_on_statistics_and_the_model_folder_records_them(manifest, tmp_path, mode):
    options = {"channels": [8, 16, 32], "dim": 32, "n_mels": 40, "pooling": "attentive_stats"}
    summary = run(_config(manifest, tmp_path / "run", encoder_options=options, epochs=2, mode=mode))
    assert 0 <= summary["pooled"]["uar"] <= 1
    model, _ = load_model(tmp_path / "run" / "fold0" / "model")
    assert model.encoder.config.pooling == "attentive_stats" and model.encoder.output_dim == 64
    assert model.head[0].mean.shape == (64,)  # the head's standardisation sees mean and std
    wavs, lengths = _batch([16000, 20000])
    with torch.no_grad():
        outputs = model({"wavs": wavs, "lengths": lengths})
    assert outputs.shape == (2, 4) and torch.isfinite(outputs).all()
