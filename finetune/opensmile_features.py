"""openSMILE functionals per audio file (eGeMAPSv02, or ComParE_2016), computed once and cached on disk.

The classic SER baselines (Eyben et al. 2016: eGeMAPS, 88 functionals; Schuller et al. 2016: ComParE, 6,373)
describe a whole utterance by statistics of acoustic descriptors. The ``opensmile`` package ships its own
binary, so extraction works offline. Audio is read as everywhere else in the toolkit (16 kHz mono through
:func:`avpretext.common.audio.read_audio`, or a caller's reader such as predict's, which also decodes
video), so the features see the same samples as the encoders.

Cache: one ``.npy`` per (feature set, file), named by a hash of the file's resolved path, size and
modification time, written atomically: an interrupted fill keeps every finished file, and a changed file
gets a new entry. The folder is ``$AVPRETEXT_CACHE/functionals`` (default ``~/.cache/avpretext``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from avpretext.common.audio import SAMPLE_RATE, AudioError, audio_error, read_audio
from avpretext.common.io import write_npy_atomic

# Our names -> opensmile.FeatureSet members.
FEATURE_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
CACHE_ENV = "AVPRETEXT_CACHE"


def default_cache_folder() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "avpretext") / "functionals"


def check_feature_set(name: str) -> str:
    if name not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {name!r}; choose from {sorted(FEATURE_SETS)}")
    return name


class Functionals:
    """Per-file functionals of one feature set, with a disk cache.

    ``compute(paths)`` -> ((N, F) float32, [(path, reason) skipped]); rows of unreadable files are NaN.
    ``cache``: a folder (default :func:`default_cache_folder`), or False for none.
    """

    def __init__(self, feature_set: str = "egemaps", cache: str | Path | bool | None = None,
                 read: Callable[[Path], "object"] = read_audio):
        import opensmile  # heavy (seconds to import): loaded when features are computed

        self.feature_set = check_feature_set(feature_set)
        self.smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, FEATURE_SETS[feature_set]),
                                     feature_level=opensmile.FeatureLevel.Functionals)
        self.names = list(self.smile.feature_names)
        self.cache = None if cache is False else Path(cache or default_cache_folder()) / feature_set
        self.read = read
        self._version = opensmile.__version__

    @property
    def dim(self) -> int:
        return len(self.names)

    def of_signal(self, wav: np.ndarray) -> np.ndarray:
        """(F,) float32 functionals of a 16 kHz mono signal (T,)."""
        values = self.smile.process_signal(np.asarray(wav, dtype=np.float32), SAMPLE_RATE).to_numpy()[0]
        return np.nan_to_num(values.astype(np.float32))  # a descriptor undefined on a silent file reads 0

    def _key(self, path: Path) -> str:
        stat = path.stat()
        text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.feature_set}|{self._version}"
        return hashlib.sha1(text.encode()).hexdigest()

    def of_file(self, path: str | Path) -> np.ndarray:
        """(F,) functionals of one file (from the cache when it holds this version of the file).

        Raises AudioError for an unreadable file."""
        path = Path(path)
        try:
            entry = self.cache / f"{self._key(path)}.npy" if self.cache is not None else None
        except OSError as err:
            raise audio_error(path, err) from None
        if entry is not None and entry.exists():
            return np.load(entry)
        wav = self.read(path)
        values = self.of_signal(wav.numpy() if hasattr(wav, "numpy") else wav)
        if entry is not None:
            write_npy_atomic(entry, values)
        return values

    def compute(self, paths) -> tuple[np.ndarray, list[tuple[str, str]]]:
        """(N, F) functionals of ``paths`` in order; unreadable files are NaN rows, listed with their reason
        (one bad file never stops the others)."""
        rows, skipped = np.full((len(paths), self.dim), np.nan, dtype=np.float32), []
        for i, path in enumerate(paths):
            try:
                rows[i] = self.of_file(path)
            except AudioError as err:
                skipped.append((str(path), err.reason))
        return rows, skipped
