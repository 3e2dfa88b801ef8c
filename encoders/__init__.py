"""Speech encoders: raw 16 kHz waveform + lengths -> frame features + lengths + pooled embedding.

``ENCODERS`` maps a name to its class; each class has a ``Config`` dataclass. Encoders are saved as a JSON
config plus safetensors weights (:func:`save_pretrained`) and rebuilt with :func:`load_pretrained`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from avpretext.common.io import write_json_atomic

from .base import EncoderOutput, SpeechEncoder, masked_mean
from .cnn import CNNEncoder
from .crnn import CRNNEncoder
from .io import LoadError, check_folder_files, load_module_state, read_json, save_tensors
from .transformer import TransformerEncoder

ENCODERS: dict[str, type[SpeechEncoder]] = {"cnn": CNNEncoder, "crnn": CRNNEncoder, "transformer": TransformerEncoder}
ENCODER_CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def build_encoder(name: str, **overrides) -> SpeechEncoder:
    """An encoder by registry name, its config defaults updated with ``overrides`` (unknown keys: error)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose from {sorted(ENCODERS)}")
    cls = ENCODERS[name]
    retired = getattr(cls, "RETIRED_OPTIONS", {})  # options of an older architecture whose weights do not fit
    for option in sorted(set(overrides) & set(retired)):
        raise ValueError(retired[option])
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown {name} encoder options {sorted(unknown)}; valid: {sorted(fields)}")
    return cls(cls.Config(**overrides))


def save_pretrained(encoder: SpeechEncoder, directory: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_json_atomic(directory / ENCODER_CONFIG_FILE, encoder.config_dict())
    save_tensors(encoder.state_dict(), directory / WEIGHTS_FILE)
    return directory


def read_encoder_config(directory: str | Path) -> tuple[str, dict]:
    """(registry name, config overrides) of a saved encoder: enough to rebuild its architecture."""
    path = Path(directory) / ENCODER_CONFIG_FILE
    config = read_json(path, required=("name",))
    name = config.pop("name")
    config.pop("init_checkpoint", None)  # saved weights (or a fresh twin) supersede the initialisation
    config.setdefault("pooling", "mean")  # saved before encoders had a pooling option: they pooled by the mean
    return name, config


def load_pretrained(directory: str | Path) -> SpeechEncoder:
    """Rebuild the encoder saved in ``directory`` (config + safetensors; nothing is unpickled).

    A folder holding anything else, or a corrupt, truncated or mismatched file, raises :class:`LoadError`
    (a ValueError) naming the file.
    """
    directory = Path(directory)
    check_folder_files(directory, (ENCODER_CONFIG_FILE, WEIGHTS_FILE))
    name, options = read_encoder_config(directory)
    try:
        encoder = build_encoder(name, **options)
    except (ValueError, TypeError) as err:
        raise LoadError(directory / ENCODER_CONFIG_FILE, str(err)) from None
    load_module_state(encoder, directory / WEIGHTS_FILE)
    return encoder


def load_pretrained_into(encoder: SpeechEncoder, directory: str | Path) -> SpeechEncoder:
    """Copy the weights saved in ``directory`` into ``encoder`` (continued pretraining starts from them).

    The saved architecture must be ``encoder``'s (name and every option but ``init_checkpoint``); otherwise a
    ValueError naming the folder and the options that differ. Returns ``encoder``.
    """
    saved = load_pretrained(directory)
    wanted, found = encoder.config_dict(), saved.config_dict()
    for config in (wanted, found):
        config.pop("init_checkpoint", None)
    if wanted != found:
        differ = sorted(k for k in set(wanted) | set(found) if wanted.get(k) != found.get(k))
        raise ValueError(f"{directory}: its encoder differs from this run's on {differ} "
                         f"(saved {[found.get(k) for k in differ]}, this run {[wanted.get(k) for k in differ]})")
    encoder.load_state_dict(saved.state_dict())
    return encoder


__all__ = ["ENCODERS", "EncoderOutput", "LoadError", "SpeechEncoder", "build_encoder", "load_pretrained",
           "load_pretrained_into", "masked_mean", "read_encoder_config", "save_pretrained"]
