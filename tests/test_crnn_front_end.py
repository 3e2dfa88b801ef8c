"""The crnn encoder's parallel raw-waveform convolutions (Latif et al., Interspeech 2019): every branch sees every
sample of real speech, and a folder saved with the single-stride front end is refused by name."""
from __future__ import annotations

import json

import pytest
import torch

from avpretext.common.audio import read_audio
from encoders import build_encoder, LoadError, load_pretrained, save_pretrained
from tests.conftest import RAVDESS, _require

SMALL = {"channels_per_kernel": 8, "conv_channels": 16, "lstm_hidden": 8, "dim": 16}


@pytest.mark.parametrize("branch", [0, 1, 2])
def test_every_sample_of_real_speech_gets_a_gradient_from_each_branch_alone(branch):
    """With the other branches' kernels zeroed, the output still depends on every input sample, the last ones
    (past the last full 10 ms frame) included."""
    path = _require(RAVDESS, "the RAVDESS speech corpus") / "Actor_01" / "03-01-01-01-01-01-01.flac"
    wav = read_audio(path)[8000:8000 + 16000 + 123]  # 1 s of speech and 123 samples, not a whole number of frames
    torch.manual_seed(0)
    encoder = build_encoder("crnn", **SMALL).eval()
    with torch.no_grad():
        for i, conv in enumerate(encoder.branches):
            if i != branch:
                conv.weight.zero_()
    x = wav[None].clone().requires_grad_()
    out = encoder(x, torch.tensor([len(wav)]))
    (out.frames * torch.randn_like(out.frames)).sum().backward()
    silent = torch.nonzero(x.grad[0] == 0).squeeze(1)
    assert len(silent) == 0, f"branch {branch} (kernel {encoder.config.kernel_sizes[branch]}): {len(silent)} of " \
                             f"{len(wav)} samples get no gradient, e.g. {silent[:5].tolist()}"


def test_branch_strides_that_would_skip_samples_are_refused():
    with pytest.raises(ValueError, match="a stride must be in"):
        build_encoder("crnn", branch_strides=[160, 160, 160])
    with pytest.raises(ValueError, match="does not divide hop 160"):
        build_encoder("crnn", branch_strides=[30, 40, 80])


def test_a_folder_saved_with_the_single_stride_front_end_is_refused_in_one_line(tmp_path):
    folder = save_pretrained(build_encoder("crnn", **SMALL), tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    del config["branch_strides"], config["hop"]
    config["stride"] = 160  # how that front end recorded its one stride; its tensors had the same shapes
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LoadError) as error:
        load_pretrained(folder)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(folder / "config.json"))
    assert "single-stride front end" in message and "retrain" in message
