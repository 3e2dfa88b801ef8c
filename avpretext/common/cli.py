"""A command line from a config dataclass: one ``--flag`` per field, typed by its default.

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
import textwrap
import tokenize


def parse_config(cls, argv=None, description: str = "", required: tuple[str, ...] = ()):
    """Parse ``argv`` into an instance of the dataclass ``cls``.

    bool fields become ``--name/--no-name``; dict fields take a JSON object; other fields take their
    default's type. Fields named in ``required`` must be given.
    """
    defaults = cls()
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    helps = field_comments(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        text = helps.get(f.name, "").replace("%", "%%")  # argparse formats help with %
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
