"""Deterministic synthetic media: voiced speech-like audio and talking-face videos.

Used by the tests and the embedded sample corpus. Nothing is downloaded: the face is scikit-image's
``astronaut`` photograph (public domain, shipped inside the scikit-image wheel), which mediapipe detects,
animated by warping the lower face (jaw opening) and optionally moving the whole head.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

SAMPLE_RATE = 16000
FACE_CROP = (slice(10, 250), slice(105, 345))  # rows, cols of the astronaut's head in the 512x512 photo
_NOSE_Y, _CHIN_Y, _FACE_X = 121.0, 167.0, 118.0  # in crop coordinates


def voiced_speech(duration_s: float, level_db: float | Callable[[np.ndarray], np.ndarray] = -20.0,
                  seed: int = 0, f0: float = 140.0, sample_rate: int = SAMPLE_RATE,
                  pauses: bool = True) -> np.ndarray:
    """A voiced, speech-like signal: harmonics of a gliding pitch under a syllable-rate envelope.

    Args:
        duration_s: length in seconds.
        level_db: RMS level of voiced parts in dBFS, constant or a function of time (s) -> dB.
        seed: varies pitch contour and syllable timing.
        f0: mean pitch in Hz.
        pauses: insert short pauses (0.2-0.4 s) between 1-2 s phrases, as in running speech.

    Returns:
        (N,) float32 in [-1, 1].
    """
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = f0 * (1 + 0.12 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 0.05 * np.sin(2 * np.pi * 3.1 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3.5, 5.0) * t + rng.uniform(0, 6))
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


def face_image() -> np.ndarray:
    """The astronaut's head, (240, 240, 3) uint8 RGB."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[FACE_CROP])


def talking_face_frame(face: np.ndarray, jaw_open: float, head_shift: tuple[float, float] = (0.0, 0.0)
                       ) -> np.ndarray:
    """Warp ``face`` so the jaw opens by ``jaw_open`` pixels and the head shifts by ``(dx, dy)`` pixels."""
    import cv2

    h, w = face.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    below_nose = np.clip((ys - _NOSE_Y) / (_CHIN_Y - _NOSE_Y), 0.0, 1.0)
    across_face = np.exp(-0.5 * ((xs - _FACE_X) / 45.0) ** 2)
    map_y = ys - jaw_open * below_nose * across_face - head_shift[1]
    map_x = xs - head_shift[0]
    return cv2.remap(face, map_x.astype(np.float32), map_y.astype(np.float32), interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def write_media(path: str | Path, frames: Callable[[int], np.ndarray] | None, num_frames: int = 0,
                fps: float = 25.0, audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE,
                rotation: int = 0, frame_times: np.ndarray | None = None, audio_codec: str = "aac",
                faststart: bool = False) -> Path:
    """Write an mp4 (H.264 + audio) with PyAV, or an audio-only file when ``frames`` is None.

    Args:
        frames: frame index -> (H, W, 3) uint8 RGB.
        rotation: display-matrix rotation in degrees (the pixels are stored unrotated, as phones do).
        frame_times: per-frame presentation times in seconds (variable frame rate); default regular.
        faststart: put the index (moov) at the start, as streaming-friendly files do.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        video = None
        if frames is not None:
            first = frames(0)
            # Variable frame rate: a millisecond clock, frames stamped with their own times.
            video = container.add_stream("libx264", rate=1000 if frame_times is not None else int(fps))
            video.height, video.width = first.shape[:2]
            video.pix_fmt = "yuv420p"
            video.options = {"preset": "veryfast", "crf": "18"}
            if rotation:
                video.set_display_rotation(rotation)
        sound = None
        if audio is not None:
            sound = container.add_stream(audio_codec, rate=sample_rate)
            sound.layout = "mono"
        if video is not None:
            for i in range(num_frames):
                frame = av.VideoFrame.from_ndarray(frames(i), format="rgb24")
                if frame_times is not None:
                    frame.pts = int(round(frame_times[i] * 1000))
                    frame.time_base = Fraction(1, 1000)
                for packet in video.encode(frame):
                    container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
        if sound is not None:
            samples = np.asarray(audio, dtype=np.float32)
            chunk = 1024
            for lo in range(0, len(samples), chunk):
                block = samples[lo:lo + chunk][None, :]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = lo
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def write_talking_face(path: str | Path, duration_s: float, fps: float = 25.0, jaw_amplitude: float = 6.0,
                       jaw_rate_hz: float = 4.0, head_motion: float = 0.0, level_db=-20.0, seed: int = 0,
                       audio: bool = True, **kwargs) -> Path:
    """A talking-face video: the jaw opens at ``jaw_rate_hz`` by up to ``jaw_amplitude`` px (0: still face),
    the head sways by ``head_motion`` px, over voiced audio at ``level_db``."""
    face = face_image()
    num_frames = int(round(duration_s * fps))

    def frame(i: int) -> np.ndarray:
        t = i / fps
        jaw = jaw_amplitude * 0.5 * (1 - np.cos(2 * np.pi * jaw_rate_hz * t))
        shift = (head_motion * np.sin(2 * np.pi * 0.5 * t), head_motion * 0.5 * np.sin(2 * np.pi * 0.3 * t))
        return talking_face_frame(face, jaw, shift)

    sound = voiced_speech(duration_s, level_db, seed=seed) if audio else None
    return write_media(path, frame, num_frames, fps, sound, **kwargs)


def write_sample_corpus(root: str | Path, num_videos: int = 6, stretches: int = 4, stretch_s: float = 4.0,
                        pause_s: float = 1.5) -> Path:
    """A small deterministic talking-face corpus whose loudness and facial activity vary within each video.

    Each video alternates calm and lively stretches of speech (quiet voice and a nearly still jaw vs a loud
    voice and a moving jaw) separated by pauses, so each stretch becomes one segment; a slow head sway runs
    throughout, which the face-activation measure must ignore. Three speakers (folders), two videos each.
    """
    root = Path(root)
    face = face_image()
    fps = 25.0
    period = stretch_s + pause_s
    duration_s = stretches * period
    for v in range(num_videos):
        path = root / f"speaker{v % 3}" / f"talk_{v:02d}.mp4"
        if path.exists():
            continue
        rng = np.random.default_rng(100 + v)
        phase = int(rng.integers(0, 2))
        lively_jaw = rng.uniform(6.0, 12.0)
        quiet, loud = -32.0 + rng.uniform(-3, 3), -14.0 + rng.uniform(-3, 3)

        def lively(t, phase=phase):
            return ((np.asarray(t) // period).astype(int) + phase) % 2 == 1

        def speaking(t):
            return (np.asarray(t) % period) < stretch_s

        def frame(i, jaw_max=lively_jaw, seed=v):
            t = i / fps
            jaw = jaw_max * 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t)) if lively(t) and speaking(t) else 1.0
            sway = (4 * np.sin(2 * np.pi * 0.3 * t + seed), 2 * np.sin(2 * np.pi * 0.2 * t))
            return talking_face_frame(face, jaw, sway)

        def level(t, q=quiet, lo=loud):
            return np.where(speaking(t), np.where(lively(t), lo, q), -120.0)

        audio = voiced_speech(duration_s, level, seed=v, f0=rng.uniform(110, 220), pauses=False)
        write_media(path, frame, int(duration_s * fps), fps, audio)
    return root
