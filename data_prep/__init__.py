"""Stage 1 and 2 of avpretext: media corpus -> per-item signals -> labelled speech segments.

Library entry points (each CLI command is a thin wrapper over one of them):

* :func:`extract_corpus`: decode videos/audio once, keep audio and per-frame face signals;
* :func:`label_corpus`: cut speech segments and derive pretext labels from the stored signals;
* :func:`load_segments`: the segment table as a pandas DataFrame.

The package holds two layers (docs/architecture.md): the signal layer (extraction, stored signals, geometry,
AUs) sits below the pretext tasks, the label stage (``label``, ``label_config``, ``audit``, ``cli``) above them.
The names are resolved lazily so that a task importing ``data_prep.signals`` or ``data_prep.segments`` does not
pull in the label stage that imports the tasks.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ExtractOptions": "extract", "extract_corpus": "extract",
    "label_corpus": "label", "load_segments": "segments",
    "build_label_config": "label_config", "load_label_config": "label_config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'data_prep' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
