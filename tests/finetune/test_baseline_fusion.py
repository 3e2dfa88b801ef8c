"""The classic openSMILE baseline (functionals on real files, the egemaps/compare grid modes) and fusion
(``--fuse egemaps`` through fine-tuning, the model folder and predict). Short: a tiny synthetic labelled set
(six speakers, four prosody-driven emotions) written to disk and the real opensmile binary."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from avpretext import synthetic
from finetune.baseline import C_GRID
from finetune.experiment import base_config, run_grid
from finetune.model import load_model
from finetune.opensmile_features import CACHE_ENV, Functionals
from finetune.predict import load_models, predict
from finetune.train import load_splits, run
from finetune.config import FinetuneConfig

TINY = {"channels": [8, 8, 16], "dim": 16, "n_mels": 40}


@pytest.fixture(autouse=True)
def feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_egemaps_functionals_of_real_files_are_cached_and_follow_the_audio(tmp_path, feature_cache):
    quiet, loud = tmp_path / "quiet.wav", tmp_path / "loud.wav"
    sf.write(quiet, synthetic.voiced_speech(2.0, level_db=-35.0, seed=1), 16000)
    sf.write(loud, synthetic.voiced_speech(2.0, level_db=-15.0, seed=1), 16000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not audio")
    functionals = Functionals("egemaps")
    values, skipped = functionals.compute([quiet, tmp_path / "broken.wav", loud, tmp_path / "missing.wav"])
    assert values.shape == (4, 88) and functionals.dim == 88
    assert np.isfinite(values[[0, 2]]).all() and np.isnan(values[[1, 3]]).all()
    assert [path for path, _ in skipped] == [str(tmp_path / "broken.wav"), str(tmp_path / "missing.wav")]
    assert "file not found" in skipped[1][1]
    loudness = functionals.names.index("loudness_sma3_amean")
    assert values[2, loudness] > 2 * values[0, loudness]  # 20 dB louder
    entries = sorted((feature_cache / "functionals" / "egemaps").glob("*.npy"))
    assert len(entries) == 2
    # A cached file is read back as computed; a rewritten file is computed again under a new entry.
    np.testing.assert_array_equal(functionals.of_file(quiet), values[0])
    sf.write(quiet, synthetic.voiced_speech(2.0, level_db=-15.0, seed=1), 16000)
    os.utime(quiet, ns=(1, 1))
    assert functionals.of_file(quiet)[loudness] > 2 * values[0, loudness]
    assert len(list((feature_cache / "functionals" / "egemaps").glob("*.npy"))) == 3


@pytest.mark.slow
def test_baseline_modes_run_as_grid_cells_paired_with_egemaps(manifest, tmp_path):
    base = base_config(str(manifest), ["num_folds=3", "dev_speakers=1"])
    out = tmp_path / "grid"
    table = run_grid(base, "", out, ["egemaps", "compare"], [1.0], [0], log=lambda *_: None)
    assert sorted(table["mode"] + "-" + table["init"]) == ["compare-logreg"] * 3 + ["egemaps-logreg"] * 3
    cell = json.loads((out / "cells" / "egemaps-logreg-f1-fold0-s0" / "metrics.json").read_text())
    assert cell["C"] in C_GRID and set(cell["dev_uar_by_C"]) == {str(c) for c in C_GRID}
    assert not set(cell["test_speakers"]) & set(cell["dev_speakers"])
    # The four emotions differ in prosody, which eGeMAPS describes: far above chance (0.25).
    assert table[table["mode"] == "egemaps"]["uar"].mean() > 0.5
    against = pd.read_csv(out / "vs_egemaps.csv")
    assert list(against["mode"]) == ["compare"] and int(against["pairs"].iloc[0]) == 3
    assert "Minus egemaps" in (out / "summary.md").read_text()
    # Cells made with other split settings are refused before any work, naming the difference.
    with pytest.raises(ValueError, match="split_seed"):
        run_grid(base_config(str(manifest), ["num_folds=3", "dev_speakers=1", "split_seed=1"]), "", out,
                 ["egemaps"], [1.0], [0])


@pytest.mark.slow
def test_fused_model_trains_records_its_statistics_and_predicts_from_functionals(manifest, tmp_path):
    config = FinetuneConfig(manifest=str(manifest), out=str(tmp_path / "run"), encoder_options=TINY, epochs=1,
                            num_folds=3, fold="0", dev_speakers=1, batch_size=8, max_seconds=1.0,
                            eval_max_seconds=2.0, num_workers=0, progress=False, fuse="egemaps")
    run(config)
    folder = tmp_path / "run" / "fold0" / "model"
    assert json.loads((folder / "labels.json").read_text())["fuse"] == {"features": "egemaps", "dim": 88}
    model, targets = load_model(folder)
    _, (split,) = load_splits(config)
    train_functionals, _ = Functionals("egemaps").compute(list(split.train["path"]))
    torch.testing.assert_close(model.fuse_norm.mean, torch.from_numpy(train_functionals.mean(0)))
    models, names = load_models(folder)
    files = list(split.test["path"].map(str))[:4]
    table, skipped = predict(models, names, files)
    assert not skipped and len(table) == 4
    # The head reads the functionals predict computed: without their weights the probabilities change.
    with torch.no_grad():
        models[0].head[-1].weight[:, -88:] = 0
    changed, _ = predict(models, names, files)
    assert not np.allclose(table[names].to_numpy(), changed[names].to_numpy())
