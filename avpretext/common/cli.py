"""A command line from a config dataclass: one ``--flag`` per field, typed by its default.

``pretext/train.py`` and ``finetune/train.py`` both expose their config this way, so a field added to a
config is a flag at once, and the run folder's ``config.json`` lists exactly the flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import json


def parse_config(cls, argv=None, description: str = "", required: tuple[str, ...] = ()):
    """Parse ``argv`` into an instance of the dataclass ``cls``.

    bool fields become ``--name/--no-name``; dict fields take a JSON object; other fields take their
    default's type. Fields named in ``required`` must be given.
    """
    defaults = cls()
    parser = argparse.ArgumentParser(description=description)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        elif isinstance(value, dict):
            parser.add_argument(flag, type=json.loads, default={}, help="JSON object")
        else:
            parser.add_argument(flag, type=type(value), default=value, required=f.name in required)
    return cls(**vars(parser.parse_args(argv)))
