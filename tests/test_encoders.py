"""Every encoder: shapes, padding invariance, save/load round trip."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from encoders import ENCODERS, LoadError, build_encoder, load_pretrained, save_pretrained

SMALL = {
    "cnn": {"channels": [8, 16, 16], "dim": 16},
    "crnn": {"channels_per_kernel": 4, "conv_channels": 16, "lstm_hidden": 8, "dim": 16},
    "transformer": {"conv_layers": [[16, 10, 5]] + [[16, 3, 2]] * 4 + [[16, 2, 2]] * 2, "dim": 32,
                    "num_layers": 2, "num_heads": 2, "ff_dim": 64, "pos_conv_kernel": 16, "pos_conv_groups": 4},
}


@pytest.fixture(params=sorted(ENCODERS))
def encoder(request):
    torch.manual_seed(0)
    return build_encoder(request.param, **SMALL[request.param]).eval()


def _batch(lengths):
    torch.manual_seed(1)
    wavs = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wavs[i, :n] = 0.1 * torch.randn(n)
    return wavs, torch.tensor(lengths)


def test_output_shapes(encoder):
    wavs, lengths = _batch([16000, 24000])
    out = encoder(wavs, lengths)
    assert out.frames.shape[0] == 2 and out.frames.shape[2] == encoder.output_dim
    assert out.pooled.shape == (2, encoder.output_dim)
    assert out.lengths[1] > out.lengths[0] > 0 and out.frames.shape[1] == out.lengths.max()


def test_padding_never_changes_a_result(encoder):
    """A batch gives the same outputs as its items one by one."""
    lengths = [8000, 16000, 12345]
    wavs, lens = _batch(lengths)
    with torch.no_grad():
        batch = encoder(wavs, lens)
        for i, n in enumerate(lengths):
            alone = encoder(wavs[i:i + 1, :n], lens[i:i + 1])
            f = int(alone.lengths[0])
            assert int(batch.lengths[i]) == f
            torch.testing.assert_close(batch.frames[i, :f], alone.frames[0, :f], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(batch.pooled[i], alone.pooled[0], atol=1e-5, rtol=1e-4)
            assert torch.all(batch.frames[i, f:] == 0)


def test_front_end_and_body_make_the_whole_encoder(encoder):
    """``forward`` is ``encode_features(*input_features(...))`` (what log-mel mixup relies on), and a log-mel front
    end fills the frames past an item's end with the log of silence, so the short item of a mix simply ends."""
    wavs, lengths = _batch([8000, 16000])
    with torch.no_grad():
        features, feature_lengths = encoder.input_features(wavs, lengths)
        whole = encoder(wavs, lengths)
        torch.testing.assert_close(encoder.encode_features(features, feature_lengths).pooled, whole.pooled)
        if encoder.input_domain == "log_mel":
            alone, alone_lengths = encoder.input_features(wavs[:1, :8000], lengths[:1])
            f = int(alone_lengths[0])
            assert int(feature_lengths[0]) == f and features.shape[-1] > f
            torch.testing.assert_close(features[0, ..., :f], alone[0, ..., :f])
            silence, _ = encoder.input_features(torch.zeros(1, 8000), torch.tensor([8000]))
            assert torch.all(features[0, ..., f:] == silence.max())  # the floor: log(0 + floor)
        else:
            assert encoder.input_domain == "waveform" and features is wavs


def test_save_load_round_trip(encoder, tmp_path):
    save_pretrained(encoder, tmp_path / "enc")
    again = load_pretrained(tmp_path / "enc").eval()
    assert type(again) is type(encoder) and again.config == encoder.config
    wavs, lengths = _batch([16000])
    with torch.no_grad():
        torch.testing.assert_close(again(wavs, lengths).pooled, encoder(wavs, lengths).pooled)
    assert sorted((tmp_path / "enc").iterdir()) == [tmp_path / "enc" / "config.json",
                                                   tmp_path / "enc" / "model.safetensors"]


def test_unknown_encoder_and_option_are_clear_errors():
    with pytest.raises(ValueError, match="choose from \\['cnn', 'crnn', 'transformer'\\]"):
        build_encoder("lstm")
    with pytest.raises(ValueError, match="unknown cnn encoder options \\['width'\\]"):
        build_encoder("cnn", width=3)


def test_transformer_initialises_from_a_local_checkpoint_without_unpickling(tmp_path):
    torch.manual_seed(3)
    source = build_encoder("transformer", **SMALL["transformer"])
    save_file(source.model.state_dict(), tmp_path / "w2v.safetensors")
    copy = build_encoder("transformer", **SMALL["transformer"], init_checkpoint=str(tmp_path / "w2v.safetensors"))
    for (name, a), (_, b) in zip(source.model.state_dict().items(), copy.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_a_bad_transformer_init_checkpoint_is_refused_by_name_without_unpickling(tmp_path):
    """torch.load's own errors (a traceback suggesting weights_only=False) never reach the user."""
    source = build_encoder("transformer", **SMALL["transformer"])
    torch.save(source.model.state_dict(), tmp_path / "w2v.pt")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    wrong = dict(source.model.state_dict())
    wrong.pop(next(iter(wrong)))
    save_file(wrong, tmp_path / "partial.safetensors")
    cases = {"missing.safetensors": "file not found", "w2v.pt": "a pickled PyTorch file",
             "corrupt.safetensors": "not a readable safetensors file", "partial.safetensors": "missing tensor",
             ".": "cannot read it"}
    for name, reason in cases.items():
        path = tmp_path / name
        with pytest.raises(LoadError) as caught:
            build_encoder("transformer", **SMALL["transformer"], init_checkpoint=str(path))
        message = str(caught.value)
        assert message.startswith(f"{path}: init_checkpoint of the transformer encoder: ") and reason in message
        assert "\n" not in message and "weights_only" not in message, message
