"""Energy pretext task: is a segment's speech energy high or low for its speaker?

Goncalves and Busso [0] predict, from speech, whether a segment's energy is above or below the median;
energy tracks vocal arousal. The value is a statistic of the frame energy contour (dB) over the segment's
speech-active frames. The median is taken per speaker (or per video) by default: measured on real corpora,
mean speech energy differs by 18-20 dB between recordings, so against a corpus-wide median "high" would only
say which recording a clip came from.

[0] L. Goncalves and C. Busso, "Improving Speech Emotion Recognition Using Self-Supervised Learning with
    Domain-Specific Audiovisual Tasks", Interspeech 2022.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_prep.audio_features import frame_energy_db
from data_prep.decode import SAMPLE_RATE

from .base import ClassificationTask, DemoMedia
from .labelling import MedianSplitConfig, frames_in, label_high_low

STATISTICS = ("mean_db", "std_db", "range_db")


@dataclass
class EnergyConfig(MedianSplitConfig):
    # mean_db: loudness of the segment's speech; std_db / range_db (p90 - p10): how much it varies.
    statistic: str = "mean_db"
    # Fewer speech frames than this fraction of the segment: no label (mostly silence).
    min_speech_fraction: float = 0.3

    def __post_init__(self):
        super().__post_init__()
        if self.statistic not in STATISTICS:
            raise ValueError(f"energy.statistic {self.statistic!r}: choose from {STATISTICS}")


def energy_statistic(energy_db: np.ndarray, statistic: str) -> float:
    """Statistic of a dB contour ``(F,) -> float`` (NaN when empty)."""
    if len(energy_db) == 0:
        return float("nan")
    if statistic == "mean_db":
        # Mean of power, in dB: loud frames dominate as they do for a listener.
        return float(10 * np.log10(np.mean(10 ** (energy_db.astype(np.float64) / 10))))
    if statistic == "std_db":
        return float(np.std(energy_db))
    p90, p10 = np.percentile(energy_db, [90, 10])
    return float(p90 - p10)


class EnergyTask(ClassificationTask):
    name = "energy"
    Config = EnergyConfig
    classes = ("low", "high")
    label_meaning = "arousal"  # louder / livelier than the group: higher arousal
    score_column = "energy_norm"

    def segment_values(self, media, segments, cfg: EnergyConfig, context=None) -> list[dict]:
        """Per segment: ``energy_value`` (statistic of speech frames) and ``energy_speech_fraction``."""
        energy = np.asarray(media.energy)
        times = np.arange(len(energy)) / media.energy_rate
        speech = media.speech  # the speech-activity mask the segmentation used
        rows = []
        for start, end in segments:
            window = frames_in(times, speech, start, end)
            value = energy_statistic(energy[window.selected], cfg.statistic)
            rows.append({"energy_value": value, "energy_speech_fraction": window.coverage})
        return rows

    def demo_values(self, media: DemoMedia, cfg: EnergyConfig) -> list[dict]:
        """The mean energy of each segment's audio; every frame counts as speech."""
        return [{"energy_value": float(np.mean(frame_energy_db(
                    media.audio[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]))), "energy_speech_fraction": 1.0}
                for start, end in media.segments]

    def assign_labels(self, table: pd.DataFrame, cfg: EnergyConfig) -> tuple[pd.DataFrame, dict]:
        return label_high_low(table, self.name, table["energy_speech_fraction"] >= cfg.min_speech_fraction, cfg)
