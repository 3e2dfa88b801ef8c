"""Frame-level audio energy and a simple energy-based speech activity detector."""
from __future__ import annotations

import numpy as np

from .decode import SAMPLE_RATE

WINDOW = 400  # 25 ms at 16 kHz: the usual speech analysis window
HOP = 160  # 10 ms: 100 energy frames per second
ENERGY_RATE = SAMPLE_RATE / HOP
_FLOOR_DB = -100.0  # energy of digital silence, so log never sees zero


def frame_energy_db(samples: np.ndarray) -> np.ndarray:
    """RMS energy in dBFS of 25 ms frames every 10 ms. ``(N,) float -> (max(1, 1 + (N - 400) // 160),)``."""
    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < WINDOW:
        samples = np.pad(samples, (0, WINDOW - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, WINDOW)[::HOP]
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    return np.maximum(10.0 * np.log10(power + 1e-12), _FLOOR_DB).astype(np.float32)


class StreamingEnergy:
    """:func:`frame_energy_db` over audio that arrives in chunks, with identical output."""

    def __init__(self):
        self._carry = np.zeros(0, dtype=np.float32)
        self._total = 0
        self._parts: list[np.ndarray] = []

    def feed(self, chunk: np.ndarray) -> None:
        buf = np.concatenate([self._carry, np.asarray(chunk, dtype=np.float32)])
        self._total += len(chunk)
        n_frames = 0 if len(buf) < WINDOW else 1 + (len(buf) - WINDOW) // HOP
        if n_frames:
            self._parts.append(frame_energy_db(buf[: (n_frames - 1) * HOP + WINDOW]))
        self._carry = buf[n_frames * HOP:]

    def finish(self) -> np.ndarray:
        if not self._parts:  # shorter than one window: one padded frame, as frame_energy_db does
            return frame_energy_db(self._carry)
        return np.concatenate(self._parts)


def speech_activity(energy_db: np.ndarray, threshold_below_peak_db: float = 35.0, floor_db: float = -55.0,
                    min_speech_s: float = 0.1, max_gap_s: float = 0.3) -> np.ndarray:
    """Boolean speech mask over energy frames.

    A frame is active when it is within ``threshold_below_peak_db`` of the recording's loud level (95th
    percentile, so one click does not set it) and above an absolute ``floor_db``. Gaps shorter than
    ``max_gap_s`` are bridged (pauses between words) and bursts shorter than ``min_speech_s`` dropped.
    Args are in dB and seconds. ``(E,) -> (E,) bool``.
    """
    if len(energy_db) == 0:
        return np.zeros(0, dtype=bool)
    loud = np.percentile(energy_db, 95)
    active = (energy_db > loud - threshold_below_peak_db) & (energy_db > floor_db)
    active = _fill_short_runs(active, value=False, max_len=int(round(max_gap_s * ENERGY_RATE)))
    return _fill_short_runs(active, value=True, max_len=int(round(min_speech_s * ENERGY_RATE)))


def _fill_short_runs(mask: np.ndarray, value: bool, max_len: int) -> np.ndarray:
    """Flip interior runs of ``value`` no longer than ``max_len`` frames (edge runs of False stay)."""
    mask = mask.copy()
    runs = mask_to_runs(mask == value)
    for start, end in runs:
        interior = start > 0 and end < len(mask)
        if end - start <= max_len and (interior or value):
            mask[start:end] = not value
    return mask


def mask_to_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` index pairs of the True runs of a boolean array."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
