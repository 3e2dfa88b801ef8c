"""The main job end to end on a reduced embedded default, and loading a user's labelled manifest."""
from __future__ import annotations

import json
import pytest

import pandas as pd

from avpretext.pipeline.main_job import MainJobConfig, load_labelled, run_main_job
from avpretext.synthetic import write_labeled_speech

QUICK_FINETUNE = ("epochs=1", "patience=1", "max_seconds=2.0", "batch_size=8", "dev_speakers=1", "num_workers=0")


@pytest.mark.slow
def test_main_job_runs_every_stage_and_writes_the_report(face_model, tmp_path, monkeypatch):
    monkeypatch.setenv("AVPRETEXT_FACE_MODEL", str(face_model))
    monkeypatch.setenv("AVPRETEXT_CACHE", str(tmp_path / "cache"))  # the eGeMAPS functionals
    out = tmp_path / "main"
    # 3 videos of 3 speech stretches (calm and lively, some posing an expression): 16.5 s each, not 22 s.
    config = MainJobConfig(out=str(out), sample_videos=3, sample_stretches=3, sample_speakers=4, fps=5,
                           pretrain_steps=3, encoder_options={"channels": [8, 8, 16], "dim": 16, "n_mels": 40},
                           fractions=(1.0,), num_folds=2, finetune_settings=QUICK_FINETUNE)
    report = run_main_job(config)
    text = report.read_text()
    for section in ("## Pseudo-labels", "## Pretext pretraining", "## Fine-tuning: pretrained vs scratch",
                    "| finetune | pretrained | 100% | 2 |", "| probe | scratch | 100% | 2 |",
                    "| lrprobe | pretrained | 100% | 2 |", "| egemaps | logreg | 100% | 2 |",
                    "Minus egemaps + logistic regression"):
        assert section in text, section
    for png in ("pseudo_labels.png", "pretraining.png", "finetune.png"):
        assert (out / "report" / png).read_bytes()[:4] == b"\x89PNG", png
    cells = pd.read_csv(out / "finetune" / "cells.csv")
    assert len(cells) == 14  # (3 modes x 2 inits + the eGeMAPS baseline) x 1 fraction x 2 folds x 1 seed
    au_counts = json.loads((out / "extract" / "label_stats.json").read_text())["tasks"]["au"]["class_counts"]
    assert au_counts["neutral"] < sum(au_counts.values())  # the sample faces pose expressions

    # A rerun resumes: nothing is recomputed, the report is rebuilt.
    again = run_main_job(config)
    assert again.read_text().split("## Pseudo-labels")[1] == text.split("## Pseudo-labels")[1]


def test_user_labels_in_a_generic_csv_or_a_prepared_manifest(tmp_path):
    prepared = write_labeled_speech(tmp_path / "speech", speakers=2, per_class=1)
    manifest = load_labelled(str(prepared))
    assert len(manifest) == 8 and set(manifest["gender"]) == {"female", "male"}
    generic = tmp_path / "speech" / "mine.csv"
    pd.read_csv(prepared)[["path", "label", "speaker"]].to_csv(generic, index=False)
    loaded = load_labelled(str(generic))
    assert list(loaded["path"]) == list(manifest["path"]) and set(loaded["gender"]) == {""}
