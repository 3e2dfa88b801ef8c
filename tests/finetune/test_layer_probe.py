"""Mode ``lrprobe``: every hidden state of a frozen encoder, summarised per file (mean, std), read by the classic
baseline's own classifier. Encoders' ``hidden_states`` on real audio, the statistics of real and broken files,
the classifier being the baseline's, and the grid cells (pretrained, scratch twin, eGeMAPS) on real files."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from avpretext import synthetic
from avpretext.common.audio import read_audio
from encoders import build_encoder, save_pretrained
from finetune.baseline import C_GRID, run_baseline_cell
from finetune.experiment import base_config, run_grid
from finetune.layer_statistics import ConcatenatedFeatures, EncoderStatistics, check_lrprobe, layer_statistics
from finetune.opensmile_features import CACHE_ENV, Functionals
from finetune.train import load_splits
from finetune.config import FinetuneConfig
from tests.conftest import RAVDESS, _require

TINY = {"channels": [8, 8, 16], "dim": 16, "n_mels": 40}


@pytest.fixture(autouse=True)
def feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    """A real RAVDESS utterance when the shared data are there, else synthetic voiced speech."""
    clip = next(iter(sorted(RAVDESS.glob("Actor_01/*.flac"))), None) if RAVDESS.exists() else None
    return read_audio(clip) if clip else torch.from_numpy(synthetic.voiced_speech(3.0, seed=0))


def test_cnn_hidden_states_are_the_front_end_then_each_stage_and_the_last_gives_the_output(speech):
    torch.manual_seed(0)
    encoder = build_encoder("cnn", **TINY).eval()
    wavs, lengths = speech[None], torch.tensor([len(speech)])
    states = encoder.hidden_states(wavs, lengths)
    assert [s.shape[-1] for s, _ in states] == [40, 8, 8, 16]  # log-mel bands, then each stage's channels
    out = encoder(wavs, lengths)
    last, frames = states[-1]
    assert torch.equal(frames, out.lengths)
    # The output is a linear map of the last stage's frequency average: the readout loses nothing by skipping it.
    torch.testing.assert_close(encoder.proj(last)[:, : int(frames)], out.frames[:, : int(frames)])
    log_mel, mel_frames = states[0]
    torch.testing.assert_close(log_mel, encoder.input_features(wavs, lengths)[0][:, 0].transpose(1, 2))


def test_transformer_hidden_states_end_with_the_output_and_other_encoders_give_their_output():
    torch.manual_seed(0)
    wav, lengths = torch.from_numpy(synthetic.voiced_speech(1.0, seed=2))[None], torch.tensor([16000])
    transformer = build_encoder("transformer", dim=32, num_layers=2, num_heads=2, ff_dim=64).eval()
    states = transformer.hidden_states(wav, lengths)
    assert len(states) == 2
    torch.testing.assert_close(states[-1][0], transformer(wav, lengths).frames)
    crnn = build_encoder("crnn").eval()
    (frames, n), = crnn.hidden_states(wav, lengths)
    torch.testing.assert_close(frames, crnn(wav, lengths).frames)


def test_layer_statistics_of_real_files_centre_crop_and_name_broken_ones(tmp_path, speech):
    torch.manual_seed(0)
    encoder = build_encoder("cnn", **TINY)
    good, long, broken = tmp_path / "good.wav", tmp_path / "long.wav", tmp_path / "broken.wav"
    # Float samples: the file holds exactly the waveform compared against below.
    sf.write(good, speech.numpy(), 16000, subtype="FLOAT")
    sf.write(long, np.concatenate([np.zeros(16000, np.float32), speech.numpy(), np.zeros(16000, np.float32)]), 16000,
             subtype="FLOAT")
    broken.write_bytes(b"RIFF not audio")
    statistics = EncoderStatistics(encoder, "all", max_seconds=len(speech) / 16000)
    assert statistics.dim == 2 * (40 + 8 + 8 + 16)
    values, skipped = statistics.compute([good, broken, long, tmp_path / "missing.wav"])
    assert np.isfinite(values[[0, 2]]).all() and np.isnan(values[[1, 3]]).all()
    assert [p for p, _ in skipped] == [str(broken), str(tmp_path / "missing.wav")]
    # The long file's centred crop is the good file: the same statistics (the evaluation crop of the other modes).
    np.testing.assert_allclose(values[2], values[0], rtol=1e-4, atol=1e-4)
    # Means then standard deviations of each layer: the log-mel block's means are the mel bands' time averages.
    log_mel, frames = encoder.hidden_states(speech[None], torch.tensor([len(speech)]))[0]
    np.testing.assert_allclose(values[0][:40], log_mel[0, : int(frames)].mean(0).detach().numpy(), rtol=1e-4,
                               atol=1e-4)
    last = layer_statistics(encoder, speech, "last")
    assert last.shape == (2 * 16,)
    # --fuse: eGeMAPS functionals beside the statistics, one row per file, a broken file listed once.
    fused = ConcatenatedFeatures([statistics, Functionals("egemaps")])
    both, bad = fused.compute([good, broken])
    assert fused.dim == statistics.dim + 88 and both.shape == (2, fused.dim)
    np.testing.assert_array_equal(both[0, : statistics.dim], values[0])
    assert np.isnan(both[1]).all() and [p for p, _ in bad] == [str(broken)]


@pytest.mark.slow
def test_lrprobe_cells_pair_a_pretrained_encoder_its_random_twin_and_egemaps(manifest, tmp_path):
    torch.manual_seed(7)
    pretrained = save_pretrained(build_encoder("cnn", **TINY), tmp_path / "encoder")
    base = base_config(str(manifest), ["num_folds=3", "dev_speakers=1", "eval_max_seconds=2.0"])
    out = tmp_path / "grid"
    table = run_grid(base, str(pretrained), out, ["lrprobe", "egemaps"], [1.0], [0, 1], log=lambda *_: None)
    assert sorted(set(table["mode"] + "-" + table["init"])) == ["egemaps-logreg", "lrprobe-pretrained",
                                                                "lrprobe-scratch"]
    assert len(table) == 3 * 3 * 2
    cell = json.loads((out / "cells" / "lrprobe-pretrained-f1-fold0-s0" / "metrics.json").read_text())
    assert cell["C"] in C_GRID and cell["init"] == "pretrained" and cell["features"] == 2 * (40 + 8 + 8 + 16)
    assert cell["encoder_source"] == str(pretrained) and cell["best_epoch"] is None
    scratch = [json.loads((out / "cells" / f"lrprobe-scratch-f1-fold0-s{s}" / "metrics.json").read_text())
               for s in (0, 1)]
    assert all(not c["pretrained"] for c in scratch)
    # The log-mel front end alone separates these prosody-driven classes: far above chance (0.25).
    assert table[table["mode"] == "lrprobe"]["uar"].mean() > 0.5
    assert "Minus egemaps" in (out / "summary.md").read_text()
    assert set(pd.read_csv(out / "paired.csv")["mode"]) == {"lrprobe"}


def test_lrprobe_reads_features_through_the_baselines_own_classifier(manifest, tmp_path):
    """Given eGeMAPS functionals as its features, the lrprobe cell is the eGeMAPS cell: the two modes differ
    in the features alone."""
    config = FinetuneConfig(manifest=str(manifest), num_folds=3, fold="0", dev_speakers=1, mode="lrprobe")
    targets, (split,) = load_splits(config)
    egemaps = run_baseline_cell(dataclasses.replace(config, mode="egemaps"), split, targets, tmp_path / "a")
    probe = run_baseline_cell(config, split, targets, tmp_path / "b", Functionals("egemaps"),
                              record={"init": "scratch"})
    assert probe["test"] == egemaps["test"] and probe["C"] == egemaps["C"] and probe["init"] == "scratch"


@pytest.mark.parametrize("option", [{"mixup_alpha": 0.2}, {"chunk_seconds": 1.0}, {"cluster_weight": 0.5},
                                    {"probe_layers": "middle"}])
def test_lrprobe_refuses_options_it_has_no_place_for(option):
    with pytest.raises(ValueError, match="probe-layers|lrprobe"):
        check_lrprobe(FinetuneConfig(mode="lrprobe", **option))


def test_real_ravdess_statistics_differ_between_a_pretrained_and_a_random_encoder():
    """On real speech, weights change every layer's statistics but the log-mel front end's (it has none)."""
    clip = next(iter(sorted(_require(RAVDESS, "the RAVDESS speech corpus").glob("Actor_02/*.flac"))))
    wav = read_audio(clip)
    torch.manual_seed(0)
    a = layer_statistics(build_encoder("cnn", **TINY).eval(), wav)
    torch.manual_seed(1)
    b = layer_statistics(build_encoder("cnn", **TINY).eval(), wav)
    np.testing.assert_allclose(a[:80], b[:80])
    assert not np.allclose(a[80:], b[80:])


@pytest.mark.slow
def test_layer_probe_experiment_archives_named_methods_and_refuses_a_missing_encoder(manifest, tmp_path, capsys):
    from experiments import layer_probe

    torch.manual_seed(3)
    encoder = save_pretrained(build_encoder("cnn", **TINY), tmp_path / "enc")
    args = ["--manifest", str(manifest), "--corpus", "tiny", "--work", str(tmp_path / "work"), "--fractions", "1",
            "--seeds", "0", "--encoder", f"tiny={encoder}", "--set", "eval_max_seconds=2.0",
            "--archive", str(tmp_path / "archive")]
    layer_probe.main(args)  # the baseline grid's splits: 4 speaker folds, 2 dev speakers
    cells = pd.read_csv(tmp_path / "archive" / "cells.csv")
    assert sorted(set(cells["method"])) == ["egemaps", "lrprobe-scratch-tiny", "lrprobe-tiny"]
    assert len(cells) == 3 * 4 and set(cells["corpus"]) == {"tiny"}
    text = (tmp_path / "archive" / "layer_probe.md").read_text()
    assert "| tiny | lrprobe | 100% | 4 |" in text and "lrprobe-tiny - eGeMAPS" in text
    # Errors are one line with exit 2: cells of other settings in WORK, an encoder folder without an encoder.
    capsys.readouterr()
    for change, message in ((["--set", "eval_max_seconds=3.0"], "eval_max_seconds: 2.0 -> 3.0"),
                            (["--encoder", f"gone={tmp_path / 'nothing'}"], "holds no exported encoder")):
        with pytest.raises(SystemExit) as stop:
            layer_probe.main(args + change)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and "Traceback" not in err
