"""The hand-made acoustic descriptor of a segment's speech frames, which the cluster task clusters in round 0.

* log-mel band energies (mean and std over speech frames): spectral envelope and its variation (tilt and
  brightness rise with vocal effort);
* frame energy statistics (mean/std/range in dB, as :mod:`pretext.tasks.energy` computes them);
* spectral centroid (mean/std, log Hz), and a voicing/pitch proxy from the normalised autocorrelation
  (voicing strength, voiced share, log-f0 mean/std over voiced frames): prosody, the strongest arousal cue.

Frames are the extraction's energy frames (:data:`data_prep.audio_features.WINDOW` samples of the 16 kHz
audio), read with seeking so hour-long recordings never sit in memory.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import soundfile as sf

from data_prep.audio_features import WINDOW
from data_prep.decode import SAMPLE_RATE

from .energy import energy_statistic

N_FFT = 1024  # zero-padded 25 ms frames: 15.6 Hz bins, and autocorrelation lags up to 40 ms without wrap-around
F0_RANGE_HZ = (60.0, 400.0)  # pitch search range of the voicing proxy (adult speech)
VOICED = 0.5  # normalised autocorrelation peak above which a frame counts as voiced


def descriptor_names(n_mels: int) -> list[str]:
    """Names of the descriptor dimensions, in column order (``cluster_d000`` is the first)."""
    return ([f"mel{i}_mean" for i in range(n_mels)] + [f"mel{i}_std" for i in range(n_mels)]
            + ["energy_mean_db", "energy_std_db", "energy_range_db", "centroid_mean", "centroid_std",
               "voicing_mean", "voiced_share", "logf0_mean", "logf0_std"])


def descriptor_columns(n_mels: int) -> list[str]:
    return [f"cluster_d{i:03d}" for i in range(len(descriptor_names(n_mels)))]


@lru_cache(maxsize=8)
def _analysis(window: int, n_mels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Hann window (W,), mel filters (N_FFT/2+1, n_mels), bin frequencies (N_FFT/2+1,), the window's own
    normalised autocorrelation (N_FFT/2+1,)), computed once per configuration."""
    import torchaudio  # heavy (loads torch): only a label run with the cluster task needs it

    hann = np.hanning(window + 2)[1:-1].astype(np.float32)  # periodic-like: no zero end samples
    filters = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 50.0, SAMPLE_RATE / 2, n_mels, SAMPLE_RATE,
                                                    norm="slaney", mel_scale="slaney").numpy()
    freqs = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE).astype(np.float32)
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(hann, N_FFT)) ** 2, N_FFT)[: N_FFT // 2 + 1]
    return hann, filters.astype(np.float32), freqs, (window_ac / window_ac[0]).astype(np.float32)


def frame_descriptors(frames: np.ndarray, n_mels: int) -> dict[str, np.ndarray]:
    """Per-frame spectral and voicing features of analysis frames ``(F, W)`` at 16 kHz.

    Returns:
        ``logmel`` (F, n_mels) dB; ``centroid`` (F,) log2 Hz; ``voicing`` (F,) normalised autocorrelation
        peak in the pitch range (0..1, corrected for the window's taper as in Boersma 1993); ``logf0`` (F,)
        log2 Hz of that peak.
    """
    hann, filters, freqs, window_ac = _analysis(frames.shape[1], n_mels)
    spectrum = np.fft.rfft(frames * hann, N_FFT)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)  # (F, N_FFT/2+1)
    logmel = 10 * np.log10(power @ filters + 1e-10)
    total = power.sum(1) + 1e-10
    centroid = np.log2((power @ freqs) / total + 1.0)
    # Autocorrelation = inverse FFT of the power spectrum (Wiener-Khinchin); divided by the window's own
    # autocorrelation so long lags (low pitch) are not penalised by the taper.
    autocorr = np.fft.irfft(power, N_FFT)[:, : N_FFT // 2 + 1]
    lo, hi = int(SAMPLE_RATE / F0_RANGE_HZ[1]), int(SAMPLE_RATE / F0_RANGE_HZ[0])
    normalised = autocorr[:, lo:hi + 1] / (autocorr[:, :1] + 1e-10) / window_ac[lo:hi + 1]
    best = normalised.argmax(1)
    voicing = np.clip(normalised[np.arange(len(best)), best], 0.0, 1.0)
    logf0 = np.log2(SAMPLE_RATE / (lo + best))
    return {"logmel": logmel, "centroid": centroid, "voicing": voicing, "logf0": logf0}


def segment_descriptor(frames: np.ndarray, energy_db: np.ndarray, n_mels: int) -> np.ndarray:
    """The fixed-length descriptor of one segment's speech frames: ``(F, W) frames, (F,) dB -> (D,) float32``
    in the order of :func:`descriptor_names`. Log-f0 statistics are NaN when no frame is voiced."""
    f = frame_descriptors(frames, n_mels)
    voiced = f["voicing"] > VOICED
    logf0 = f["logf0"][voiced]
    values = [f["logmel"].mean(0), f["logmel"].std(0),
              [energy_statistic(energy_db, s) for s in ("mean_db", "std_db", "range_db")],
              [f["centroid"].mean(), f["centroid"].std(), f["voicing"].mean(), voiced.mean(),
               logf0.mean() if len(logf0) else np.nan, logf0.std() if len(logf0) > 1 else np.nan]]
    return np.concatenate([np.asarray(v, dtype=np.float64) for v in values]).astype(np.float32)


def read_frames(audio: sf.SoundFile, index: np.ndarray, hop: int) -> np.ndarray:
    """The energy frames ``index`` (ascending frame numbers; frame e covers samples ``[e*hop, e*hop+WINDOW)``)
    of an open 16 kHz file, read with one seek: ``(F,) -> (F, WINDOW)`` float32, channels averaged."""
    span = int(index[-1] - index[0]) * hop + WINDOW
    audio.seek(int(index[0]) * hop)
    samples = audio.read(span, dtype="float32", always_2d=True).mean(1)
    if len(samples) < span:  # the energy analysis zero-padded the file's last frame
        samples = np.pad(samples, (0, span - len(samples)))
    return np.lib.stride_tricks.sliding_window_view(samples, WINDOW)[::hop][index - index[0]]
