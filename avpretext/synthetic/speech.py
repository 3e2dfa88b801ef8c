"""Speech-like audio without a recording: harmonics of a gliding pitch under a syllable-rate envelope."""
from __future__ import annotations

from typing import Callable

import numpy as np

SAMPLE_RATE = 16000


def voiced_speech(duration_s: float, level_db: float | Callable[[np.ndarray], np.ndarray] = -20.0,
                  seed: int = 0, f0: float = 140.0, sample_rate: int = SAMPLE_RATE,
                  pauses: bool = True, syllable_rate: float | None = None, pitch_range: float = 0.12,
                  tilt: float = 1.0) -> np.ndarray:
    """A voiced, speech-like signal: harmonics of a gliding pitch under a syllable-rate envelope.

    Args:
        duration_s: length in seconds.
        level_db: RMS level of voiced parts in dBFS, constant or a function of time (s) -> dB.
        seed: varies pitch contour and syllable timing.
        f0: mean pitch in Hz.
        pauses: insert short pauses (0.2-0.4 s) between 1-2 s phrases, as in running speech.
        syllable_rate: syllables per second (default: drawn from 3.5-5 by ``seed``).
        pitch_range: depth of the slow intonation contour, a fraction of ``f0`` (0.12: +-12 %).
        tilt: spectral slope, harmonic k at amplitude 1/k**tilt (lower: brighter, as with vocal effort).

    Returns:
        (N,) float32 in [-1, 1].
    """
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = f0 * (1 + pitch_range * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
                  + 0.05 * np.sin(2 * np.pi * 3.1 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    harmonics = sum(np.sin(k * phase) / k ** tilt for k in range(1, 12))
    rate = rng.uniform(3.5, 5.0)  # drawn even when given, so the other draws of a seed stay the same
    rate = rate if syllable_rate is None else syllable_rate
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6))
    envelope = syllables
    if pauses:
        gate = np.ones(n)
        pos = rng.uniform(1.0, 2.0)
        while pos < duration_s:
            gap = rng.uniform(0.2, 0.4)
            gate[int(pos * sample_rate):int((pos + gap) * sample_rate)] = 0.0
            pos += gap + rng.uniform(1.0, 2.0)
        envelope = envelope * np.convolve(gate, np.hanning(801) / np.hanning(801).sum(), mode="same")
    signal = harmonics * envelope
    levels = level_db(t) if callable(level_db) else np.full(n, level_db)
    rms = np.sqrt(np.mean((harmonics * syllables) ** 2))
    signal = signal / rms * 10 ** (levels / 20)
    signal += rng.normal(0, 10 ** (-70 / 20), n)  # a recording's noise floor, not digital silence
    return np.clip(signal, -1, 1).astype(np.float32)
