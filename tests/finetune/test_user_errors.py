"""finetune/train.py and finetune/experiment.py as a user runs them: a mistake is one line naming the file and
reason (exit 2, no traceback), too little data never trains silently, and experiment cells record what made
them so that a rerun with other settings is refused instead of mixed. Data: a tiny synthetic labelled set."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
import torch

from avpretext import synthetic
from avpretext.synthetic import write_labeled_speech
from encoders import build_encoder, save_pretrained
from finetune import experiment, predict, train
from finetune.experiment_report import markdown, paired_differences, summary_table
from tests.conftest import run_main

REPO = Path(__file__).resolve().parents[2]
TINY = {"channels": [8, 8, 16], "dim": 16}
TIMEOUT = 240


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """6 speakers x 2 classes x 4 one-second utterances (48 files) and their manifest."""
    return write_labeled_speech(tmp_path_factory.mktemp("speech"), speakers=6, per_class=4,
                                classes=("neutral", "angry"), duration_s=1.0)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_pretrained(build_encoder("cnn", **TINY), tmp_path_factory.mktemp("pre") / "encoder")


def _finetune(manifest, out, *extra, launcher=(), env=None, capsys=None):
    """finetune/train.py as a command; with ``capsys``, its main() in this process (see run_main)."""
    args = ["--manifest", manifest, "--out", out, "--encoder-options", json.dumps(TINY), "--epochs", 1,
            "--num-folds", 3, "--fold", 0, "--dev-speakers", 1, "--num-workers", 0, "--no-progress", *extra]
    if capsys is not None:
        return run_main(train.main, args, capsys)
    return _run([*launcher, str(REPO / "finetune" / "train.py"), *args], env)


def _experiment(manifest, pretrained, out, *settings, extra=(), capsys=None):
    """finetune/experiment.py as a command; with ``capsys``, its main() in this process (see run_main)."""
    args = ["--manifest", manifest, "--pretrained", pretrained, "--out", out, "--modes", "finetune",
            "--fractions", "1", "--seeds", "0", "--folds", "0",
            *[a for s in ("epochs=1", "num_folds=3", "dev_speakers=1", "num_workers=0", *settings)
              for a in ("--set", s)], *extra]
    if capsys is not None:
        return run_main(experiment.main, args, capsys)
    return _run([str(REPO / "finetune" / "experiment.py"), *args])


def _run(args, env=None):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT, env={**os.environ, **(env or {})})


def assert_user_error(result, program: str, *expected: str) -> str:
    """Exit 2, no traceback, one ``error:`` line on stderr holding every expected piece."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"{program}: error: "), result.stderr[-3000:]
    for piece in expected:
        assert piece in errors[0], (piece, errors[0])
    return errors[0]


def _with_missing_file(speech, folder: Path) -> tuple[Path, str]:
    rows = pd.read_csv(speech, dtype=str, keep_default_na=False)
    rows.loc[5, "path"] = "spk01/deleted.flac"
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "manifest.csv", index=False)
    for path in rows["path"][rows["path"] != "spk01/deleted.flac"]:  # the audio beside the new manifest
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).symlink_to(Path(speech).parent / path)
    return folder / "manifest.csv", str(folder / "spk01" / "deleted.flac")


@pytest.mark.slow
def test_finetune_input_errors_are_one_line_before_anything_is_written(speech, tmp_path, capsys):
    program = "finetune/train.py"
    manifest, deleted = _with_missing_file(speech, tmp_path / "data")
    # The command line itself once; the other mistakes through the same main() in this process.
    assert_user_error(_finetune(manifest, tmp_path / "a"), program, f"{deleted}: cannot read audio (file not found)")
    assert_user_error(_finetune(tmp_path / "none.csv", tmp_path / "b", capsys=capsys), program,
                      "none.csv: no such manifest")
    assert_user_error(_finetune(speech, tmp_path / "c", "--init", tmp_path / "no_encoder", capsys=capsys), program,
                      f"--init {tmp_path / 'no_encoder'}")
    assert_user_error(_finetune(speech, tmp_path / "d", "--encoder-options", '{"chanels": [8]}', capsys=capsys),
                      program, "chanels")
    (tmp_path / "file").write_text("not a folder")
    assert_user_error(_finetune(speech, tmp_path / "file", capsys=capsys), program, f"{tmp_path / 'file'}",
                      "existing file")
    assert not any((tmp_path / name).exists() for name in "abcd")


@pytest.mark.slow
def test_a_training_set_smaller_than_two_processes_batches_still_trains(speech, tmp_path):
    """3 training speakers x 8 = 24 files, batch 16, 2 processes: drop_last left each process no batch, so
    every epoch trained nothing and the run still reported a 'trained' model. (The two seeded dev speakers
    alone, as before dev_min_per_class: with the rule a third would join dev and leave 16 files.)"""
    launcher = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no"]
    result = _finetune(speech, tmp_path / "run", "--batch-size", 16, "--epochs", 2, "--patience", 5,
                       "--dev-min-per-class", 0, launcher=launcher, env={"ACCELERATE_USE_CPU": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    fold = json.loads((tmp_path / "run" / "fold0" / "metrics.json").read_text())
    assert fold["train_items"] == 24
    history = [json.loads(line) for line in open(tmp_path / "run" / "fold0" / "history.jsonl")]
    assert len(history) == 2 and all(h["train_loss"] > 0 for h in history), history


@pytest.mark.slow
def test_experiment_input_errors_are_one_line(speech, pretrained, tmp_path, capsys):
    program = "finetune/experiment.py"
    manifest, deleted = _with_missing_file(speech, tmp_path / "data")
    # The command line itself once; the other mistakes through the same main() in this process.
    assert_user_error(_experiment(manifest, pretrained, tmp_path / "a"), program, f"{deleted}", "file not found")
    assert_user_error(_experiment(speech, tmp_path / "nothing", tmp_path / "b", capsys=capsys), program,
                      f"--pretrained {tmp_path / 'nothing'}", "no exported encoder")
    (tmp_path / "file").write_text("not a folder")
    assert_user_error(_experiment(speech, pretrained, tmp_path / "file", capsys=capsys), program, "existing file")
    assert_user_error(_experiment(speech, pretrained, tmp_path / "c", "epochs=ten", capsys=capsys), program,
                      "--set epochs=ten: epochs must be a JSON int")
    assert_user_error(_experiment(speech, pretrained, tmp_path / "d", "epoch=10", capsys=capsys), program,
                      "unknown option 'epoch'")
    assert not any((tmp_path / name).exists() for name in "abcd")


@pytest.fixture(scope="module")
def finished_grid(speech, pretrained, tmp_path_factory) -> Path:
    """An experiment folder whose 2 cells (finetune, pretrained and scratch, fold 0) finished, run as the
    command; the tests below rerun it on copies."""
    out = tmp_path_factory.mktemp("grid") / "exp"
    first = _experiment(speech, pretrained, out)
    assert first.returncode == 0, first.stderr[-3000:]
    return out


def _copy(grid: Path, folder: Path) -> Path:
    shutil.copytree(grid, folder)  # "out" is result-neutral: a copy's cells count as finished
    return folder


@pytest.mark.slow
def test_experiment_cells_record_their_config_and_a_rerun_with_other_settings_is_refused(speech, pretrained,
                                                                                          finished_grid, tmp_path,
                                                                                          capsys):
    program, out = "finetune/experiment.py", _copy(finished_grid, tmp_path / "exp")
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert cells == ["finetune-pretrained-f1-fold0-s0", "finetune-scratch-f1-fold0-s0"]
    recorded = {c: json.loads((out / "cells" / c / "config.json").read_text()) for c in cells}
    assert recorded[cells[0]]["epochs"] == 1 and recorded[cells[0]]["init"] == str(pretrained)
    twin = recorded[cells[1]]
    assert twin["init"] == "scratch" and {k: twin["encoder_options"][k] for k in TINY} == TINY  # the architecture
    before = {c: (out / "cells" / c / "metrics.json").read_bytes() for c in cells}

    # Result-neutral settings (workers, progress) reuse the cells; any other difference is refused by name.
    again = _experiment(speech, pretrained, out, "num_workers=1", "progress=true", capsys=capsys)
    assert again.returncode == 0 and "2 cells (2 already finished)" in again.stdout, again.stderr[-3000:]
    error = assert_user_error(_experiment(speech, pretrained, out, "epochs=2", "lr=0.01", capsys=capsys), program,
                              "2 finished cell(s) were made with other settings", "epochs: 1 -> 2",
                              "lr: 0.001 -> 0.01", "new --out")
    assert cells[0] in error and cells[1] in error
    # A wider grid with other settings is refused too: its reports would summarise the old cells with it.
    assert_user_error(_experiment(speech, pretrained, out, "epochs=2", extra=["--fractions", "0.5"], capsys=capsys),
                      program, "epochs: 1 -> 2")
    # A scratch cell never reads the pretrained-only fields: only the pretrained cell differs.
    error = assert_user_error(_experiment(speech, pretrained, out, "encoder_lr_mult=0.1", capsys=capsys), program,
                              "1 finished cell(s)", "encoder_lr_mult: 1.0 -> 0.1")
    assert cells[0] in error and cells[1] not in error
    assert {c: (out / "cells" / c / "metrics.json").read_bytes() for c in cells} == before
    assert sorted(p.name for p in (out / "cells").iterdir()) == cells  # nothing new trained


@pytest.mark.slow
def test_cells_without_a_recorded_config_are_refused_as_unknown(speech, pretrained, finished_grid, tmp_path):
    out = _copy(finished_grid, tmp_path / "exp")
    (out / "cells" / "finetune-scratch-f1-fold0-s0" / "config.json").unlink()  # a cell whose settings are unknown
    assert_user_error(_experiment(speech, pretrained, out), "finetune/experiment.py",
                      "1 finished cell(s) (e.g. finetune-scratch-f1-fold0-s0) have no config.json",
                      "settings, which are unknown", "use a new --out")


# --- predict, encoder initialisation, fold counts, report intervals -------------------------------------------

SMALL_TRANSFORMER = {"conv_layers": [[16, 10, 5]] + [[16, 3, 2]] * 4 + [[16, 2, 2]] * 2, "dim": 32, "num_layers": 2,
                     "num_heads": 2, "ff_dim": 64, "pos_conv_kernel": 16, "pos_conv_groups": 4}


@pytest.fixture(scope="module")
def model_run(speech, tmp_path_factory) -> Path:
    """A fine-tuning run OUT (fold 0 only) whose OUT/fold0/model predict reads; trained on 1.0 s utterances."""
    out = tmp_path_factory.mktemp("model") / "run"
    result = _finetune(speech, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _predict(*args):
    return _run([str(REPO / "finetune" / "predict.py"), *args])


@pytest.mark.slow
def test_predict_refuses_an_existing_folder_as_out_before_any_inference(model_run, speech, tmp_path):
    (tmp_path / "taken").mkdir()
    result = _predict(model_run, Path(speech).parent, "--out", tmp_path / "taken")
    assert_user_error(result, "finetune/predict.py", f"{tmp_path / 'taken'}: the output file is an existing folder")
    assert len(result.stderr.splitlines()) == 1 and not result.stdout, result.stderr  # nothing predicted first
    assert not any((tmp_path / "taken").iterdir())


@pytest.mark.slow
def test_predict_skips_audio_far_shorter_than_the_model_was_trained_on(model_run, speech, tmp_path, capsys):
    """A WAV truncated to 3 KB decodes to 0.09 s: the model never saw anything that short, so the file is
    skipped and named, not given a confident label; the model folder records what it was trained on."""
    labels = json.loads((model_run / "fold0" / "model" / "labels.json").read_text())
    assert labels["shortest_training_seconds"] == pytest.approx(1.0, abs=0.01)
    whole = next(Path(speech).parent.rglob("*.flac"))
    truncated = tmp_path / "truncated.wav"
    audio, rate = sf.read(whole, dtype="float32")
    sf.write(tmp_path / "whole.wav", audio, rate, subtype="PCM_16")
    truncated.write_bytes((tmp_path / "whole.wav").read_bytes()[:3000])
    # predict's main() in this process (run_main); the test above runs the command itself.
    result = run_main(predict.main, [model_run, whole, truncated, "--out", tmp_path / "p.csv"], capsys)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipped {truncated}: only 0.09 s of audio, under the minimum of 0.50 s" in result.stderr
    assert list(pd.read_csv(tmp_path / "p.csv")["path"]) == [str(whole)]
    forced = run_main(predict.main, [model_run, whole, truncated, "--out", tmp_path / "all.csv", "--min-seconds", "0"],
                      capsys)
    assert forced.returncode == 0 and len(pd.read_csv(tmp_path / "all.csv")) == 2, forced.stderr[-3000:]


@pytest.mark.slow
def test_a_bad_init_checkpoint_is_one_line_before_anything_is_written(speech, tmp_path, capsys):
    """torch's traceback (with its weights_only=False suggestion) never reaches the user; nothing is unpickled."""
    torch.save(build_encoder("transformer", **SMALL_TRANSFORMER).model.state_dict(), tmp_path / "w2v.pt")
    # The pickled file through the command itself (a fresh interpreter shows every torch warning).
    cases = (("missing.safetensors", "file not found", capsys), ("w2v.pt", "a pickled PyTorch file", None))
    for name, reason, mode in cases:
        options = json.dumps({**SMALL_TRANSFORMER, "init_checkpoint": str(tmp_path / name)})
        result = _finetune(speech, tmp_path / "out", "--encoder", "transformer", "--encoder-options", options,
                           capsys=mode)
        assert_user_error(result, "finetune/train.py", f"{tmp_path / name}: init_checkpoint of the transformer "
                                                       f"encoder: {reason}")
        assert "weights_only" not in result.stderr
        assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_bad_init_checkpoint_stops_pretraining_before_the_run_folder_is_written(tmp_path):
    data = synthetic.write_segment_table(tmp_path / "labels", tasks=("energy",), media=2)
    (tmp_path / "w2v.bin").write_bytes(b"\x80\x04not weights")  # a pickle stream
    options = json.dumps({**SMALL_TRANSFORMER, "init_checkpoint": str(tmp_path / "w2v.bin")})
    result = _run([str(REPO / "pretext" / "train.py"), "--data", data, "--tasks", "energy", "--encoder",
                   "transformer", "--encoder-options", options, "--out", tmp_path / "run", "--max-steps", 1,
                   "--num-workers", 0, "--report-to", "none"])
    assert_user_error(result, "pretext/train.py", f"{tmp_path / 'w2v.bin'}: init_checkpoint", "pickled")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_too_few_speakers_for_the_folds_names_the_option_and_the_value_that_works(tmp_path, capsys):
    four = write_labeled_speech(tmp_path / "four", speakers=4, per_class=1, classes=("neutral", "angry"),
                                duration_s=0.5)
    error = assert_user_error(_finetune(four, tmp_path / "out", "--num-folds", 6, "--dev-speakers", 2, capsys=capsys),
                              "finetune/train.py", "4 speakers cannot fill 6 folds", "--num-folds")
    assert "at most 4" in error, error
    assert not (tmp_path / "out").exists()


def test_the_experiment_report_says_why_a_single_pair_has_no_interval():
    cells = pd.DataFrame([{"mode": "finetune", "init": init, "fraction": 1.0, "fold": "fold0", "seed": 0,
                           "uar": uar, "macro_f1": uar, "accuracy": uar}
                          for init, uar in (("scratch", 0.5), ("pretrained", 0.6))])
    text = markdown(summary_table(cells), paired_differences(cells))
    assert "nan" not in text, text
    assert "| finetune | 100% | 1 | +10.0 | none (n=1) | none (n=1) |" in text, text
