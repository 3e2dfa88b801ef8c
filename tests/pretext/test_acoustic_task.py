"""The acoustic-descriptor pretext task (eGeMAPS LLDs regressed per frame) on real audio files: openSMILE through
``data_prep extract`` and ``label``, the cached descriptor files, and a few real pretraining steps."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from avpretext import synthetic
from avpretext.common.batches import collate, SegmentDataset
from data_prep.label.audit import audit_labels
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.segments import load_segments
from pretext.tasks import get_task
from pretext.tasks.acoustic import DESCRIPTORS, PITCH, AcousticConfig, cached_llds, lld_path
from pretext.tasks.base import align_frame_targets, check_task_class
from pretext.tasks.scores import correlation_scores, correlation_sums
from pretext.train import TrainConfig, train
from tests.data_prep.helpers import run_extract

pytest.importorskip("opensmile")

RATE = 16000
VOICES = {"low": 110.0, "high": 260.0}  # base F0 (Hz) of the two kinds of recording


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, face_model):
    """Four audio-only recordings (two low voices, two high voices, with pauses) through extract and label."""
    root = tmp_path_factory.mktemp("acoustic_audio")
    for i, (kind, f0) in enumerate([*VOICES.items(), *VOICES.items()]):
        audio = synthetic.voiced_speech(9.0, -26.0 - 3 * i, seed=i, f0=f0, pauses=True)
        sf.write(root / f"{kind}_{i}.wav", audio, RATE, subtype="FLOAT")
    out = tmp_path_factory.mktemp("acoustic_extract")
    assert not run_extract(root, out, face_model).failed
    dest = tmp_path_factory.mktemp("acoustic_label")
    config = build_label_config({"tasks": ["energy", "acoustic"]})
    result = label_corpus(out, config, dest=dest, progress=False)
    return {"out": out, "dest": dest, "result": result}


def test_the_task_passes_the_checked_contract():
    task = check_task_class(type(get_task("acoustic")))
    assert task.frame_level and task.classes == ()


@pytest.mark.slow
def test_label_writes_descriptor_files_and_standardises_over_the_corpus(labelled):
    table = load_segments(labelled["dest"])
    assert table["acoustic_mask"].all() and (table["acoustic_label"] == 0).all()
    task, cfg = get_task("acoustic"), AcousticConfig()
    for audio in table["audio_path"].unique():
        llds = np.load(lld_path(audio))
        assert llds.shape[1] == len(DESCRIPTORS) and len(llds) > 800  # 9 s at 100 frames/s
        assert lld_path(audio).parent == type(lld_path(audio))(audio).parent  # beside its audio
    # Standardised targets of every labelled segment: mean about 0 and SD about 1 over the corpus.
    targets = np.concatenate([task.frame_targets(row, int(row["start"] * RATE), int(row["end"] * RATE), cfg)
                              for _, row in table.iterrows()])
    values, ones = targets[:, :-1], targets[:, -1]
    assert (ones == 1).all()
    assert abs(np.nanmean(values[:, 0])) < 0.3 and 0.6 < np.nanstd(values[:, 0]) < 1.4  # loudness
    # Pitch exists only where voiced, and the high voices have the higher standardised pitch.
    assert 0.05 < np.isfinite(values[:, PITCH]).mean() < 1.0
    pitch = {kind: np.nanmean(np.concatenate([
        task.frame_targets(row, int(row["start"] * RATE), int(row["end"] * RATE), cfg)[:, PITCH]
        for _, row in table[table["media_id"].str.startswith(kind)].iterrows()])) for kind in VOICES}
    assert pitch["high"] > pitch["low"] + 1.0
    stats = labelled["result"].stats["tasks"]["acoustic"]
    assert stats["labelled"] == len(table) and stats["frames"] > 1000 and 0 < stats["voiced_share"] < 1
    assert "F0semitoneFrom27.5Hz_sma3nz" in stats["standardisation"]


def test_descriptor_files_are_reused_and_recomputed_when_damaged(labelled):
    audio = load_segments(labelled["dest"])["audio_path"].iloc[0]
    path = lld_path(audio)
    before = np.load(path)
    mtime = path.stat().st_mtime_ns
    np.testing.assert_array_equal(cached_llds(audio), before)
    assert path.stat().st_mtime_ns == mtime  # read, not rewritten
    path.write_bytes(b"not an array")
    np.testing.assert_array_equal(cached_llds(audio), before)


def test_a_crop_reads_its_own_frames_and_batches_pad_them(labelled):
    table = load_segments(labelled["dest"])
    task, cfg = get_task("acoustic"), AcousticConfig(descriptors=["Loudness_sma3", "F0semitoneFrom27.5Hz_sma3nz"])
    dataset = SegmentDataset(table, ["energy", "acoustic"], max_seconds=1.0, random_crop=True, seed=0,
                             frame_targets={"acoustic": lambda row, a, b: task.frame_targets(row, a, b, cfg)})
    batch = collate([dataset[0], dataset[1]])
    target = batch["labels"]["acoustic"]
    assert target.shape == (2, 100, 3) and (target[..., -1] == 1).all()  # 1 s crops: 100 frames each
    assert batch["labels"]["energy"].shape == (2,)


def test_aligned_targets_average_into_encoder_frames_and_correlations_score_them():
    # One item of 6 target frames into 3 encoder frames, another of 2 frames (padded) into 2 of 3.
    values = torch.tensor([[1.0, 3.0, 5.0, float("nan"), 2.0, 4.0], [7.0, 9.0, 0.0, 0.0, 0.0, 0.0]])
    present = torch.tensor([[1.0] * 6, [1.0, 1.0, 0, 0, 0, 0]])
    target = torch.stack([values, present], dim=-1)
    aligned = align_frame_targets(target, 3, torch.tensor([3, 2]))
    np.testing.assert_allclose(aligned[0, :, 0].numpy(), [2.0, 5.0, 3.0])
    np.testing.assert_allclose(aligned[1, :2, 0].numpy(), [7.0, 9.0])
    assert torch.isnan(aligned[1, 2, 0])
    pred = torch.tensor([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    truth = torch.tensor([[2.0, 1.0], [4.0, 0.0], [6.0, float("nan")]])
    scores = correlation_scores(correlation_sums(pred, truth), ["a", "b"])
    assert scores["r/a"] == pytest.approx(1.0) and scores["r/b"] == pytest.approx(1.0) and scores["n"] == 5


@pytest.mark.slow
def test_pretraining_regresses_the_descriptors(labelled, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(data=str(labelled["dest"]), tasks="energy,acoustic", encoder="crnn", out=str(run),
                      encoder_options={"channels_per_kernel": 8, "conv_channels": 16, "lstm_hidden": 16, "dim": 16},
                      max_steps=12, batch_size=4, num_workers=0, eval_every=12, checkpoint_every=12, log_every=4,
                      max_seconds=2.0, warmup_steps=2, lr=3e-3, val_fraction=0.25, report_to="none"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "val"][-1]
    assert train_records[-1]["acoustic/loss"] < train_records[0]["acoustic/loss"]
    assert val["acoustic/n"] > 0 and np.isfinite(val["acoustic/r_mean"])
    assert "acoustic/r/F0semitoneFrom27.5Hz_sma3nz" in val and "energy/uar" in val
    assert (run / "encoder" / "model.safetensors").is_file()


def test_the_audit_shows_what_the_descriptors_carry_per_reference_class(labelled, tmp_path):
    """``data_prep audit`` averages each segment's standardised descriptors per reference class: here the
    recordings' kind, so the high voices must show the higher pitch."""
    table = load_segments(labelled["dest"])
    refs = tmp_path / "refs.csv"
    pd.DataFrame({"id": sorted(table["media_id"].unique()),
                  "emotion": [m.split("_")[0] for m in sorted(table["media_id"].unique())]}).to_csv(refs, index=False)
    result = audit_labels(labelled["out"], refs, tmp_path / "audit",
                          config=build_label_config({"tasks": ["acoustic"]}), segments=labelled["dest"])
    diagnostics = json.dumps(result.report)
    assert "F0semitoneFrom27.5Hz_sma3nz_z" in diagnostics
    pitch = result.report["tasks"]["acoustic"]["diagnostics"]["F0semitoneFrom27.5Hz_sma3nz_z"]
    assert pitch["high"] > pitch["low"] + 1.0
