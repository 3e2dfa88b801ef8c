"""Fixtures shared by the fine-tuning tests."""
from __future__ import annotations

import pytest

from avpretext import synthetic
from finetune.recipes import prepare_csv, write_manifest


@pytest.fixture(scope="session")
def manifest(tmp_path_factory):
    """A tiny labelled corpus (6 speakers, 4 clips per class) and its manifest; tests only read it."""
    root = tmp_path_factory.mktemp("labelled")
    rows = prepare_csv(synthetic.write_labeled_speech(root / "speech", speakers=6, per_class=4),
                       gender_column="gender", split_column="split", fold_column="fold")
    return write_manifest(rows, root / "m.csv")
