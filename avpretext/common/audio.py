"""Reading speech audio: 16 kHz mono float tensors with seeking, and one-line errors that name the file."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


SAMPLE_RATE = 16000


class AudioError(RuntimeError):
    """An audio file that cannot be read: ``str()`` is one line, ``<path>: cannot read audio (<reason>)``.

    A DataLoader worker cannot send the exception itself: torch re-raises ``AudioError(message)`` in the main
    process, one string holding the worker's traceback whose last line is ours. So a single argument is
    parsed back into path and reason, and the reason is kept to one line for that to work.
    """

    _LINE = re.compile(r"^(?:[\w.]*AudioError: )?(?P<path>.*): cannot read audio \((?P<reason>.*)\)$")

    def __init__(self, path: str, reason: str | None = None):
        if reason is None:  # re-raised from a loader worker (or built from its own str())
            last = next((line for line in reversed(str(path).splitlines()) if line.strip()), "")
            match = self._LINE.match(last.strip())
            path, reason = (match["path"], match["reason"]) if match else (last, "unknown reason")
        self.path, self.reason = str(path), " ".join(str(reason).split())
        super().__init__(self.path, self.reason)

    def __str__(self):
        return f"{self.path}: cannot read audio ({self.reason})"


def audio_error(path, err: Exception) -> AudioError:
    """The :class:`AudioError` for a failed read: libsndfile says only "System error." for a missing file or
    a folder, so those get their own reason."""
    if not Path(path).exists():
        return AudioError(str(path), "file not found")
    if not Path(path).is_file():
        return AudioError(str(path), "not a file")
    return AudioError(str(path), f"{type(err).__name__}: {err}")


def read_audio(path, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Samples ``[start, stop)`` (counted at 16 kHz) of an audio file as a (T,) float32 tensor at 16 kHz mono.

    Seeks instead of reading the whole file. Other rates are resampled and channels averaged, so a corpus
    need not be converted first. Raises :class:`AudioError` naming the file for anything unreadable.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            first = int(round(start * rate / SAMPLE_RATE))
            f.seek(min(first, f.frames))
            count = -1 if stop is None else max(0, int(round(stop * rate / SAMPLE_RATE)) - first)
            wav = f.read(count, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for missing/corrupt files
        raise audio_error(path, err) from err
    wav = torch.from_numpy(np.ascontiguousarray(wav.mean(1) if wav.shape[1] > 1 else wav[:, 0]))
    if rate != SAMPLE_RATE:
        import torchaudio  # only resampling needs it, and it adds to torch's import time

        wav = torchaudio.functional.resample(wav, rate, SAMPLE_RATE)
    return wav
