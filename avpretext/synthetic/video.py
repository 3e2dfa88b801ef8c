"""Writing a media file from generated pictures and sound: an mp4 (H.264 + audio) or an audio-only file, with PyAV."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np

from .speech import SAMPLE_RATE


@dataclass
class VideoTrack:
    """The picture of a file written by :func:`write_media`."""

    frames: Callable[[int], np.ndarray]  # frame index -> (H, W, 3) uint8 RGB
    num_frames: int
    fps: float = 25.0
    # Display-matrix rotation in degrees: the pixels are stored unrotated, as phones do.
    rotation: int = 0
    # (num_frames,) presentation times in seconds for a variable frame rate; None: regular at fps.
    frame_times: np.ndarray | None = None


@dataclass
class AudioTrack:
    """The sound of a file written by :func:`write_media`."""

    samples: np.ndarray  # (N,) float in [-1, 1], mono
    sample_rate: int = SAMPLE_RATE
    codec: str = "aac"  # e.g. pcm_s16le for a .wav


def write_media(path: str | Path, video: VideoTrack | None = None, audio: AudioTrack | None = None,
                faststart: bool = False) -> Path:
    """Write ``video`` and/or ``audio`` into ``path`` (the container follows the suffix: .mp4, .mkv, .wav, ...).

    ``faststart`` puts the index (moov) at the start, as streaming-friendly files do. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        picture = None
        if video is not None:
            first = video.frames(0)
            # Variable frame rate: a millisecond clock, frames stamped with their own times.
            picture = container.add_stream("libx264", rate=1000 if video.frame_times is not None else int(video.fps))
            picture.height, picture.width = first.shape[:2]
            picture.pix_fmt = "yuv420p"
            picture.options = {"preset": "veryfast", "crf": "18"}
            if video.rotation:
                picture.set_display_rotation(video.rotation)
        sound = None
        if audio is not None:
            sound = container.add_stream(audio.codec, rate=audio.sample_rate)
            sound.layout = "mono"
        if picture is not None:
            for i in range(video.num_frames):
                frame = av.VideoFrame.from_ndarray(video.frames(i), format="rgb24")
                if video.frame_times is not None:
                    frame.pts = int(round(video.frame_times[i] * 1000))
                    frame.time_base = Fraction(1, 1000)
                for packet in picture.encode(frame):
                    container.mux(packet)
            for packet in picture.encode():
                container.mux(packet)
        if sound is not None:
            samples = np.asarray(audio.samples, dtype=np.float32)
            chunk = 1024
            for lo in range(0, len(samples), chunk):
                block = samples[lo:lo + chunk][None, :]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="mono")
                frame.sample_rate = audio.sample_rate
                frame.pts = lo
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path
