"""The command lines of every avpretext command: one parser class, and a parser built from a config dataclass.

:class:`CommandParser` is the ``argparse.ArgumentParser`` of every command: a usage error is one line
(``prog: error: ...; see prog --help``, exit 2), as for every other input error (README: Exit codes), and
``--help`` shows each option's default unless the option is required or its help already states it.

:func:`parse_config` gives one ``--flag`` per field of a config dataclass, typed by its default:
``pretext/train.py`` and ``finetune/train.py`` both expose their config this way, so a field added to a
config is a flag at once, and the run folder's ``config.json`` lists exactly the flags.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import json
import sys
import textwrap
import tokenize
from pathlib import Path


def command_name(script: str, console_script: str = "") -> str:
    """The name to show in usage and error lines: ``console_script`` (e.g. ``avpretext-prepare``) when the
    process was started as that console script, else ``script`` (e.g. ``finetune/prepare.py``), which is what
    ``python -m`` and ``python path/to/script.py`` run alike."""
    if console_script and Path(sys.argv[0] if sys.argv else "").name == console_script:
        return console_script
    return script


def comma_list(cast=str):
    """An argparse ``type``: ``"0.1,0.25"`` -> ``[cast("0.1"), cast("0.25")]`` (empty items dropped)."""
    def parse(text: str) -> list:
        return [cast(x) for x in text.split(",") if x]
    parse.__name__ = f"comma-separated {cast.__name__}"  # what argparse names in an invalid-value message
    return parse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` only where it informs: not to required options or options without a
    default (``(default: )``, ``(default: None)``), nor to help that already states its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.required or action.default in (None, "", [], {}, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line on stderr, exit 2 (argparse prints the
    whole usage block first, which buries the reason); subcommand parsers inherit the class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def parse_config(cls, argv=None, description: str = "", required: tuple[str, ...] = (), prog: str | None = None,
                 notes: dict[str, str] | None = None):
    """Parse ``argv`` into an instance of the dataclass ``cls``.

    bool fields become ``--name/--no-name``; dict fields take a JSON object; other fields take their
    default's type. Fields named in ``required`` must be given. ``prog``: the command's name in usage and
    error lines. ``notes``: {field: text} appended to a field's help, for what its comment cannot know
    (e.g. the names a registry holds at run time).
    """
    defaults = cls()
    parser = CommandParser(prog=prog, description=description)
    helps = field_comments(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        text = " ".join(filter(None, (helps.get(f.name, ""), (notes or {}).get(f.name, ""))))
        text = text.replace("%", "%%")  # argparse formats help with %
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value, help=text)
        elif isinstance(value, dict):
            parser.add_argument(flag, type=json.loads, default={}, help=f"{text} (a JSON object)".strip())
        else:
            parser.add_argument(flag, type=type(value), default=value, required=f.name in required, help=text)
    return cls(**vars(parser.parse_args(argv)))


def field_comments(cls) -> dict[str, str]:
    """``{field name: its comment}`` from the source of a dataclass and its bases: the comment lines directly
    above a field, then the comment on its line, then comment lines right below it that are indented as its
    continuation (``#`` followed by two or more spaces). Fields without a comment are left out; a class whose
    source cannot be read (built in C, or defined in an interactive session) gives none."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            comments.update(_own_field_comments(klass))
    return comments


def _own_field_comments(klass) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    by_line = {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
               if tok.type == tokenize.COMMENT}
    fields = {node.lineno: node for node in ast.parse(source).body[0].body
              if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    comments: dict[str, list[str]] = {}
    above: list[str] = []
    last_field = None
    for number, line in enumerate(source.splitlines(), start=1):
        text = by_line.get(number, "")
        if line.strip().startswith("#"):
            if last_field and not above and text.startswith("#  "):
                comments[last_field].append(text.lstrip("#").strip())
            else:
                above.append(text.lstrip("#").strip())
        elif number in fields:
            node = fields[number]
            inline = by_line.get(node.end_lineno, "")
            comments[node.target.id] = above + ([inline.lstrip("#").strip()] if inline else [])
            above, last_field = [], node.target.id
        else:
            above, last_field = [], None
    return {name: " ".join(p for p in parts if p) for name, parts in comments.items() if any(parts)}
