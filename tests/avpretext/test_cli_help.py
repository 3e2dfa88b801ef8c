"""``--help`` prints each option's meaning, taken from the config dataclass's field comments."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from avpretext.common.cli import field_comments, parse_config

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class _Base:
    # Shared by subclasses: comment above
    # spanning two lines.
    rate: float = 0.5


@dataclasses.dataclass
class _Config(_Base):
    name: str = "x"  # inline, with a 100% sign
    steps: int = 3  # first part
    #                continued below the field
    bare: int = 1
    flag: bool = False  # a switch


def test_field_comments_above_inline_continued_and_inherited():
    helps = field_comments(_Config)
    assert helps == {"rate": "Shared by subclasses: comment above spanning two lines.",
                     "name": "inline, with a 100% sign", "steps": "first part continued below the field",
                     "flag": "a switch"}
    assert parse_config(_Config, ["--steps", "5", "--flag"]) == _Config(steps=5, flag=True)


@pytest.mark.parametrize("module", ["pretext.train", "finetune.train"])
def test_every_training_option_has_help(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    from finetune.config import FinetuneConfig
    from pretext.train import TrainConfig

    cls = {"pretext.train": TrainConfig, "finetune.train": FinetuneConfig}[module]
    config = cls.__name__
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in field_comments(cls)]
    assert not missing, f"{config} fields without a comment (no --help text): {missing}"
    assert "peak AdamW learning rate" in done.stdout or "head (and scratch encoder) learning rate" in done.stdout
