"""``--help`` prints each option's meaning, taken from the config dataclass's field comments."""
from __future__ import annotations

import dataclasses
import re
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


@pytest.mark.slow
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


# --- every command's usage errors and help texts ----------------------------------------------------------------

def _commands():
    import avpretext.pipeline.main_job
    import data_prep.label.cli
    import finetune.experiment
    import finetune.predict
    import finetune.prepare
    import finetune.train
    import pretext.train

    data_prep_main = data_prep.label.cli.main
    return {"data_prep extract": (data_prep_main, ["extract"]), "data_prep label": (data_prep_main, ["label"]),
            "data_prep audit": (data_prep_main, ["audit"]), "pretext/train.py": (pretext.train.main, []),
            "finetune/train.py": (finetune.train.main, []), "finetune.prepare": (finetune.prepare.main, []),
            "finetune/experiment.py": (finetune.experiment.main, []), "finetune/predict.py": (finetune.predict.main, []),
            "avpretext.main_job": (avpretext.pipeline.main_job.main, [])}


def _run_main(main, argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    return stop.value.code, out, err


@pytest.mark.parametrize("prog", ["data_prep extract", "data_prep label", "data_prep audit", "pretext/train.py",
                                  "finetune/train.py", "finetune.prepare", "finetune/experiment.py",
                                  "finetune/predict.py", "avpretext.main_job"])
def test_a_usage_error_is_one_line_naming_the_command(prog, capsys):
    """As every other input error (README: Exit codes): one line, exit 2, not argparse's usage block first."""
    main, sub = _commands()[prog]
    # An unknown option after a subcommand is reported by the top parser (argparse parses subcommands with
    # parse_known_args): a missing option value is the subcommand's own error.
    wrong = ["--config"] if prog == "data_prep label" else ["--no-such-option"]
    code, _, err = _run_main(main, [*sub, *wrong], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"{prog}: error: "), err
    assert err.rstrip().endswith(f"see {prog} --help"), err


@pytest.mark.slow
def test_a_console_script_names_itself_in_usage_and_errors():
    script = str(Path(sys.executable).parent / "avpretext-prepare")
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: avpretext-prepare "), shown.stdout[:200]
    wrong = subprocess.run([script, "ravdess"], capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and wrong.stderr.startswith("avpretext-prepare: error: "), wrong.stderr
    assert len(wrong.stderr.splitlines()) == 1, wrong.stderr


def _help(prog: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    main, sub = _commands()[prog]
    code, out, _ = _run_main(main, [*sub, "--help"], capsys)
    assert code == 0
    return out


def option_help(text: str, flag: str) -> str:
    """The help of one option in ``--help`` output, on one line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {flag} ") or line == f"  {flag}"
                 or line.startswith(f"  {flag},"))
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^  \S", lines[i]) or not lines[i].strip()),
               len(lines))
    return " ".join(" ".join(lines[start:end]).split())


def test_help_shows_each_default_once_and_never_an_empty_one(capsys, monkeypatch):
    from pretext.tasks import TASKS

    helps = {prog: _help(prog, capsys, monkeypatch) for prog in _commands()}
    for prog, text in helps.items():
        assert "(default: )" not in text and "(default: None)" not in text, (prog, text)
    finetune = helps["finetune/train.py"]
    assert option_help(finetune, "--classes").count("default") == 1
    assert "(default" not in option_help(finetune, "--manifest")  # required: no default to show
    speaker = option_help(finetune, "--speaker-weight")
    assert speaker.startswith("--speaker-weight SPEAKER_WEIGHT Weight of an auxiliary speaker-id loss")
    assert "gender" not in speaker and "these weights" not in speaker, speaker  # one option, one text
    tasks = option_help(helps["pretext/train.py"], "--tasks")
    assert all(name in tasks for name in TASKS), tasks
    expected = {("avpretext.main_job", "--out"): "(default: runs/main)",
                ("avpretext.main_job", "--fps"): "(default: 10.0)",
                ("avpretext.main_job", "--pretrain-steps"): "(default: 100)",
                ("data_prep extract", "--max-side"): "(default: 640)",
                ("data_prep extract", "--num-faces"): "(default: 4)",
                ("finetune/experiment.py", "--folds"): "(default: all)",
                ("finetune/predict.py", "--max-seconds"): "(default: 30.0)"}
    for (prog, flag), default in expected.items():
        assert default in option_help(helps[prog], flag), (prog, flag, option_help(helps[prog], flag))


def test_print_config_is_toml_that_explains_every_field_and_reads_back(capsys, tmp_path):
    """README: the full config, every field documented; saved as a file it is a valid --config."""
    import tomllib

    import data_prep.label.cli
    from data_prep.label.config import build_label_config, load_label_config

    assert data_prep.label.cli.main(["label", "--print-config"]) == 0
    text = capsys.readouterr().out
    config = build_label_config()
    assert build_label_config(tomllib.loads(text)).to_dict() == config.to_dict()
    (tmp_path / "label.toml").write_text(text)
    assert load_label_config(tmp_path / "label.toml").to_dict() == config.to_dict()
    comments = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    sections = {"segmentation": config.segmentation, "speech": config.speech, **config.task_configs}
    for name, section in sections.items():
        explained = field_comments(type(section))
        undocumented = [f.name for f in dataclasses.fields(section) if f.name not in explained]
        assert not undocumented, f"[{name}] fields without an explanation: {undocumented}"
        for field_name, comment in explained.items():
            assert comment in comments, (name, field_name, comment)


def test_readme_documents_the_options_users_asked_about():
    readme = (ROOT / "README.md").read_text()
    for option in ("--report-to", "--eval-every", "--lr", "--pretrain-steps", "--use-segments", "--print-config",
                   "RUN/pretext/"):
        assert option in readme, option


def test_every_command_line_uses_the_one_line_error_parser():
    """A parser built with argparse.ArgumentParser directly prints its whole usage block before the error."""
    sources = [p for folder in ("avpretext", "data_prep", "encoders", "pretext", "finetune", "experiments",
                                "benchmarks") for p in (ROOT / folder).rglob("*.py")]
    direct = [str(p.relative_to(ROOT)) for p in sources if "argparse.ArgumentParser(" in p.read_text()
              and p != ROOT / "avpretext" / "common" / "cli.py"]
    assert not direct, f"use avpretext.common.cli.CommandParser in {direct}"
