"""Fixtures of the pretext tests: a labelled segment table shared by the training tests."""
from __future__ import annotations

import pytest

from avpretext import synthetic

TASKS = ("energy", "face", "au", "tests.pretext.plugin_task:DurationTask")


@pytest.fixture(scope="session")
def segments(tmp_path_factory):
    """A ``data_prep label`` folder of 6 media, 24 segments (3 speakers), the built-in tasks and a plug-in task,
    written directly (no video, no face model): training tests need labelled audio, not the extraction,
    which tests/data_prep covers. The columns equal a real run's (tests/data_prep/test_synthetic.py)."""
    return synthetic.write_segment_table(tmp_path_factory.mktemp("segments"), tasks=TASKS)
