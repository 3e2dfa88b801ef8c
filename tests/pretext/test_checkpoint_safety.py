"""Nothing a run reads is unpickled: crafted pickles planted in checkpoints, encoder and model folders are
refused by name (a ValueError) and never executed."""
from __future__ import annotations

import json
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from encoders import build_encoder, load_pretrained, save_pretrained
from encoders.io import read_json, read_safetensors
from finetune.config import FinetuneConfig
from finetune.data import Targets
from finetune.model import SERModel, save_model
from finetune.predict import main as predict_main
from finetune.train import check_init
from pretext.checkpoint import _save_tensors, _write_json, capture_rng, restore_rng
from pretext.train import TrainConfig, main, train

TINY = {"channels": [8, 8, 16], "dim": 16}
CHECKPOINT_FILES = ["model.safetensors", "optimizer.json", "optimizer.safetensors", "rng_0.json",
                    "rng_0.safetensors", "scheduler.json", "train_state.json"]


class _Payload:
    """Unpickling it creates ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def test_the_payload_runs_code_when_unpickled(tmp_path):
    """The planted files are real exploits: an unpickling loader would have created the marker."""
    marker = tmp_path / "pwned"
    pickle.loads(crafted_pickle(marker)).close()
    assert marker.exists()


@pytest.fixture(scope="module")
def checkpointed_run(segments, tmp_path_factory):
    out = tmp_path_factory.mktemp("safety") / "run"
    config = TrainConfig(data=str(segments), tasks="energy,face,au", encoder="cnn", out=str(out),
                         encoder_options=TINY, max_steps=2, batch_size=4, num_workers=0, eval_every=100,
                         checkpoint_every=2, log_every=1, max_seconds=2.0, val_fraction=0.2, warmup_steps=1)
    train(config)
    assert sorted(p.name for p in (out / "checkpoints" / "step_2").iterdir()) == CHECKPOINT_FILES
    return config


def _resume_args(config, out):
    return ["--data", config.data, "--tasks", config.tasks, "--encoder", "cnn", "--out", str(out),
            "--encoder-options", json.dumps(TINY), "--max-steps", "4", "--batch-size", "4", "--num-workers", "0",
            "--checkpoint-every", "2", "--eval-every", "100", "--log-every", "1", "--max-seconds", "2.0",
            "--val-fraction", "0.2", "--warmup-steps", "1", "--resume"]


@pytest.mark.slow
@pytest.mark.parametrize("planted", CHECKPOINT_FILES + ["custom_checkpoint_0.pkl", "random_states_0.pkl",
                                                        "pytorch_model.bin", "optimizer.bin", "rng_1.json"])
def test_resume_refuses_a_crafted_or_unexpected_file_by_name(checkpointed_run, planted, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(checkpointed_run.out, out)
    marker = tmp_path / "pwned"
    (out / "checkpoints" / "step_2" / planted).write_bytes(crafted_pickle(marker))
    assert main(_resume_args(checkpointed_run, out)) == 2
    error = capsys.readouterr().err
    assert error.startswith("pretext/train.py: error: ") and len(error.strip().splitlines()) == 1
    assert str(out / "checkpoints" / "step_2" / planted) in error
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "bad_json", "missing_tensor", "shape", "schedule_ahead"])
def test_resume_refuses_a_corrupt_or_mismatching_checkpoint_by_name(checkpointed_run, damage, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(checkpointed_run.out, out)
    folder = out / "checkpoints" / "step_2"
    if damage == "truncate":
        name = "model.safetensors"
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    elif damage == "bad_json":
        name = "train_state.json"
        (folder / name).write_text('{"step": 2, "epoch"')
    elif damage == "schedule_ahead":  # stepped once per process by a 2-process run
        name = "scheduler.json"
        (folder / name).write_text(json.dumps(json.loads((folder / name).read_text()) | {"last_epoch": 4}))
    else:
        name = "model.safetensors"
        tensors = load_file(str(folder / name))
        key = sorted(tensors)[0]
        if damage == "missing_tensor":
            del tensors[key]
        else:
            tensors[key] = tensors[key].reshape(-1)[:1].clone()
        save_file(tensors, str(folder / name))
    assert main(_resume_args(checkpointed_run, out)) == 2
    error = capsys.readouterr().err
    assert str(folder / name) in error, error
    assert len(error.strip().splitlines()) == 1


def _encoder_folder(tmp_path) -> Path:
    return save_pretrained(build_encoder("cnn", **TINY), tmp_path / "encoder")


@pytest.mark.parametrize("planted", ["config.json", "model.safetensors"])
def test_load_pretrained_refuses_a_crafted_file_by_name(planted, tmp_path):
    folder = _encoder_folder(tmp_path)
    marker = tmp_path / "pwned"
    (folder / planted).write_bytes(crafted_pickle(marker))
    with pytest.raises(ValueError, match=f"{folder / planted}: "):
        load_pretrained(folder)
    assert not marker.exists()


def test_finetune_init_refuses_a_crafted_encoder_by_name(tmp_path):
    folder = _encoder_folder(tmp_path)
    marker = tmp_path / "pwned"
    (folder / "model.safetensors").write_bytes(crafted_pickle(marker))
    with pytest.raises(ValueError, match=f"{folder / 'model.safetensors'}: not a readable safetensors"):
        check_init(FinetuneConfig(init=str(tmp_path)))  # a run folder holding encoder/
    assert not marker.exists()


@pytest.mark.parametrize("planted", ["head.safetensors", "labels.json", "encoder/model.safetensors"])
def test_predict_refuses_a_crafted_model_file_by_name(planted, tmp_path, capsys):
    model_dir = save_model(SERModel(build_encoder("cnn", **TINY), 2), Targets(["calm", "angry"], []),
                           tmp_path / "model")
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    assert predict_main([str(model_dir), str(wav)]) == 0  # the intact model predicts
    capsys.readouterr()
    marker = tmp_path / "pwned"
    (model_dir / planted).write_bytes(crafted_pickle(marker))
    assert predict_main([str(model_dir), str(wav)]) == 2
    error = capsys.readouterr().err
    assert f"{model_dir / planted}: " in error and len(error.strip().splitlines()) == 1, error
    assert not marker.exists()


def test_rng_state_round_trips_through_its_files(tmp_path):
    """python random, numpy's global state, torch's CPU generator and a loader generator come back exactly
    from rng_<rank>.json + rng_<rank>.safetensors (the states Accelerate's save_state would pickle)."""
    loader = torch.Generator().manual_seed(7)
    random.random(), np.random.rand(), torch.rand(1), np.random.randn()  # leave a cached gaussian
    info, tensors = capture_rng({"train_loader": loader})
    _write_json(tmp_path / "rng_0.json", info)
    _save_tensors(tensors, tmp_path / "rng_0.safetensors")
    draws = lambda: (random.random(), float(np.random.randn()), float(torch.rand(1)),  # noqa: E731
                     float(torch.rand(1, generator=loader)))
    expected = draws()
    draws()
    restore_rng(read_json(tmp_path / "rng_0.json"), read_safetensors(tmp_path / "rng_0.safetensors"),
                {"train_loader": loader}, tmp_path / "rng_0.json")
    assert draws() == expected
