"""Facial activation pretext task: does the face move a lot or little while this speech is produced?

Goncalves and Busso [0] label segments by the amount of facial-landmark movement (high/low against a
median) and predict it from speech. (AV-SpNET [1] also pretrains a speech network on proxy labels, but its
arousal/valence proxies are derived from the audio and text of media data, not from faces.) Here the value is
the mean speed of the mesh landmarks of a region, in inter-ocular distances per second, after removing head
motion (similarity alignment on rigid points to the video's median face), so it does not depend on head
turns, face size or camera distance. Measured on real posed clips: motion normalised this way and compared
within speaker separated high- from low-arousal clips well (AUC 0.92), raw motion across speakers did not
(0.73); hence the per-speaker median by default.

[0] L. Goncalves and C. Busso, Interspeech 2022.
[1] C.-C. Lu, J.-L. Li and C.-C. Lee, "Learning an arousal-valence speech front-end network using media data
    in-the-wild for emotion recognition" (AV-SpNET), AVEC 2018 (ACM), pp. 99-105.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_prep import geometry

from .base import ClassificationTask, DemoMedia
from .labelling import MedianSplitConfig, frames_in, label_high_low


@dataclass
class FaceConfig(MedianSplitConfig):
    # Mesh region whose motion counts: all, mouth, upper, brows, eyes, lower, no_mouth (data_prep.geometry).
    # "all" follows the paper (whole-face landmarks); "no_mouth" removes articulation from the measure.
    region: str = "all"
    # A segment whose face is visible in fewer of its frames than this has no label (never guessed).
    min_face_coverage: float = 0.5
    # Frame-to-frame gaps longer than this (s) are not motion (face lost, cut): the pair is skipped. 0.5 s
    # admits extractions at --fps 5 (0.2 s apart would fail on rounding); speeds from sparser frames are
    # lower, so compare segments of extractions made at one frame rate.
    max_frame_gap_s: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if self.region not in geometry.REGIONS:
            raise ValueError(f"face.region {self.region!r}: choose from {sorted(geometry.REGIONS)}")
        if not 0.0 <= self.min_face_coverage <= 1.0:
            raise ValueError(f"face.min_face_coverage {self.min_face_coverage}: a share between 0 and 1")


def landmark_speed(times: np.ndarray, aligned: np.ndarray, region: np.ndarray, max_gap_s: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame landmark speed.

    Args:
        times: (T,) seconds.
        aligned: (T, 478, 3) head-motion-free landmarks in inter-ocular units (NaN rows: no face).
        region: indices of the landmarks that count.
        max_gap_s: pairs of frames further apart are not used.

    Returns:
        (speed (T,), valid (T,)): mean displacement per second between frame t-1 and t of the region's
        landmarks (2-D, image plane; mediapipe's depth is noisier); valid where both frames have a face.
    """
    speed = np.zeros(len(times), dtype=np.float64)
    valid = np.zeros(len(times), dtype=bool)
    if len(times) < 2:
        return speed, valid
    pts = aligned[:, region, :2]
    step = np.linalg.norm(np.diff(pts, axis=0), axis=-1).mean(-1)  # (T-1,)
    dt = np.diff(times)
    ok = np.isfinite(step) & (dt > 0) & (dt <= max_gap_s)
    speed[1:][ok] = step[ok] / dt[ok]
    valid[1:] = ok
    return speed, valid


def video_landmark_speed(media, region: np.ndarray, max_gap_s: float, chunk: int = 4096,
                         reference_frames: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """:func:`landmark_speed` over a whole video, aligned to its median face, in chunks of frames.

    The reference face is the median over at most ``reference_frames`` evenly spread face frames, and the
    alignment runs chunk by chunk (one frame of overlap), so memory stays bounded for hour-long videos.
    """
    landmarks = media.face["landmarks"]
    times = np.asarray(media.face["times"])
    present = np.flatnonzero(np.asarray(media.face["present"]))
    sample = present[np.linspace(0, len(present) - 1, min(len(present), reference_frames)).astype(int)]
    reference = np.nanmedian(geometry.to_isotropic(np.asarray(landmarks[sample]), *media.frame_size), axis=0)
    speed = np.zeros(len(times), dtype=np.float64)
    valid = np.zeros(len(times), dtype=bool)
    for lo in range(0, len(times), chunk):
        first = max(lo - 1, 0)  # the previous frame, so the chunk's first speed has its predecessor
        points = geometry.to_isotropic(np.asarray(landmarks[first:lo + chunk]), *media.frame_size)
        aligned = geometry.align_to_reference(points, reference)
        part_speed, part_valid = landmark_speed(times[first:lo + chunk], aligned, region, max_gap_s)
        speed[lo:lo + chunk] = part_speed[lo - first:]
        valid[lo:lo + chunk] = part_valid[lo - first:]
    return speed, valid


class FaceTask(ClassificationTask):
    name = "face"
    Config = FaceConfig
    classes = ("low", "high")
    label_meaning = "arousal"  # louder / livelier than the group: higher arousal
    score_column = "face_norm"

    def segment_values(self, media, segments, cfg: FaceConfig, context=None) -> list[dict]:
        """Per segment: ``face_value`` (mean landmark speed) and ``face_coverage``."""
        if media.face is None or not np.any(media.face["present"]):
            return [{"face_value": np.nan, "face_coverage": 0.0} for _ in segments]
        times = np.asarray(media.face["times"])
        speed, valid = video_landmark_speed(media, geometry.REGIONS[cfg.region], cfg.max_frame_gap_s)
        rows = []
        for start, end in segments:
            window = frames_in(times, valid, start, end)
            value = float(speed[window.selected].mean()) if window.selected.any() else np.nan
            rows.append({"face_value": value, "face_coverage": window.coverage})
        return rows

    def demo_values(self, media: DemoMedia, cfg: FaceConfig) -> list[dict]:
        """A landmark speed (inter-ocular distances per second) faster on lively segments; NaN without a face."""
        return [{"face_value": float(media.rng.uniform(0.08, 0.15) if lively else media.rng.uniform(0.02, 0.06))
                 if coverage else np.nan, "face_coverage": coverage}
                for lively, coverage in zip(media.lively, media.face_coverage)]

    def assign_labels(self, table: pd.DataFrame, cfg: FaceConfig) -> tuple[pd.DataFrame, dict]:
        return label_high_low(table, self.name, table["face_coverage"] >= cfg.min_face_coverage, cfg)
