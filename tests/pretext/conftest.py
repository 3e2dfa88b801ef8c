"""Fixtures of the pretext tests: a labelled segment table shared by the training tests."""
from __future__ import annotations

import pytest

from data_prep import build_label_config, label_corpus, synthetic
from tests.data_prep.helpers import run_extract


@pytest.fixture(scope="session")
def segments(tmp_path_factory, face_model):
    """A labelled sample corpus (6 videos, 24 segments) with the built-in tasks and a plug-in task."""
    root = synthetic.write_sample_corpus(tmp_path_factory.mktemp("corpus"))
    out = tmp_path_factory.mktemp("extract")
    run_extract(root, out, face_model, options={"max_fps": 10})
    config = build_label_config({"tasks": ["energy", "face", "au", "tests.pretext.plugin_task:DurationTask"]})
    label_corpus(out, config, progress=False)
    return out


