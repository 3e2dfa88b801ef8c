"""Deterministic synthetic media: voiced speech-like audio and talking-face videos.

Used by the tests and the embedded sample corpus. Nothing is downloaded: the face is the head of
scikit-image's ``astronaut`` photograph (public domain, NASA), shipped in ``data_prep/assets`` so that neither
the demo nor the tests need scikit-image; mediapipe detects it. It is
animated by warping the lower face (jaw opening), optionally moving the whole head, and posing facial
expressions (smooth displacement fields around the brows, eyes, cheeks and lips; see :func:`expression_frame`).
:func:`write_labeled_speech` writes a small audio-only corpus of emotion classes that differ in prosody, and
:func:`write_segment_table` a labelled segment table with its audio, as ``data_prep label`` writes, without video.
"""
from __future__ import annotations

import csv
import functools
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

SAMPLE_RATE = 16000
FACE_CROP = (slice(10, 250), slice(105, 345))  # rows, cols of the astronaut's head in the 512x512 photo
_NOSE_Y, _CHIN_Y, _FACE_X = 121.0, 167.0, 118.0  # in crop coordinates


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


FACE_IMAGE_FILE = Path(__file__).resolve().parents[1] / "data_prep" / "assets" / "astronaut_face.npz"
FACE_IMAGE_SHA256 = "77021d06cae50ff81c26b2ed777cab8e818a633f617c818332c4e01919f738af"  # of the pixel bytes


def face_image() -> np.ndarray:
    """The astronaut's head, (240, 240, 3) uint8 RGB: ``skimage.data.astronaut()[FACE_CROP]``, shipped in the
    package (``data_prep/assets``) so that the demo needs no scikit-image."""
    with np.load(FACE_IMAGE_FILE, allow_pickle=False) as stored:
        return np.ascontiguousarray(stored["face"])


# Landmarks of face_image() in crop pixels (x, y), measured with mediapipe's FaceLandmarker (mesh points in
# brackets; the subject's right side is on the image's left).
_EYES = ((99.5, 91.5), (141.1, 93.5))  # eye centres (33/133 and 362/263 corners, 159/145 and 386/374 lids)
_INNER_BROWS = ((110.0, 79.0), (131.0, 80.0))  # (107, 336)
_OUTER_BROWS = ((88.0, 78.0), (152.0, 81.0))  # between (70, 105) and (300, 334)
_LIP_CORNERS = ((97.4, 129.3), (139.6, 130.6))  # (61, 291)
_MOUTH_X = 118.5  # (0, 13, 14, 17)
_UPPER_LIP_Y, _INNER_UPPER_Y, _INNER_LOWER_Y, _LOWER_LIP_Y = 130.6, 133.3, 139.8, 145.7

EXPRESSIONS = ("neutral", "happy", "surprise", "angry", "sad")


def talking_face_frame(face: np.ndarray, jaw_open: float, head_shift: tuple[float, float] = (0.0, 0.0),
                       expression: str | None = None, strength: float = 1.0) -> np.ndarray:
    """Warp ``face`` so the jaw opens by ``jaw_open`` pixels and the head shifts by ``(dx, dy)`` pixels.

    ``expression`` (one of :data:`EXPRESSIONS`) also poses a facial expression at ``strength`` (see
    :func:`expression_frame`); None (the default) keeps the photograph's own face, which smiles.
    """
    import cv2

    h, w = face.shape[:2]
    ys, xs, below_nose, across_face = _grid(h, w)
    if expression is not None:
        # The face's own deformation (jaw + expression) moves with the head: it is defined in face
        # coordinates, so it is sampled at (output - head_shift).
        dx, dy = expression_displacement(expression, strength, (h, w))
        dy = dy + np.float32(jaw_open) * (below_nose * across_face)
        if head_shift[0] or head_shift[1]:
            field = cv2.remap(np.dstack([dx, dy]), xs - np.float32(head_shift[0]), ys - np.float32(head_shift[1]),
                              interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            dx, dy = field[..., 0], field[..., 1]
        map_x = xs - head_shift[0] - dx
        map_y = ys - head_shift[1] - dy
        return cv2.remap(face, map_x.astype(np.float32), map_y.astype(np.float32), interpolation=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    map_y = ys - jaw_open * below_nose * across_face - head_shift[1]
    map_x = xs - head_shift[0]
    return cv2.remap(face, map_x.astype(np.float32), map_y.astype(np.float32), interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def expression_frame(face: np.ndarray, expression: str, strength: float = 1.0, jaw_open: float = 0.0,
                     head_shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``face`` (:func:`face_image`) posing ``expression`` at ``strength``, with the jaw open by ``jaw_open`` px
    and the head shifted by ``head_shift`` px.

    The photograph smiles (mediapipe reads ``mouthSmile`` ~0.9), so every expression starts from a relaxed
    "neutral" face whose lip corners are lowered and drawn in; ``strength`` (0..1, more exaggerates) blends
    from that neutral face to the full expression and is ignored for "neutral". What the warps do, and what
    the AU estimates of ``data_prep.aus`` measured on them (above a neutral baseline of the same face):

    * happy: lip corners up and out, cheeks raised under the eyes. AU06 +0.2, AU12 +0.4: happiness.
    * surprise: brows raised, eyes widened, jaw dropped. AU01 and AU02 +0.4, AU05 +0.9 (AU26 when the
      talking jaw opens too): surprise.
    * angry: brows lowered and drawn in, lids tightened, jaw clenched, lips closed and thinned. AU04 +0.2,
      AU07 +0.25, but AU23 only about +0.1: mediapipe's lip points hardly follow the thinning, so anger (3 of
      AU04, AU05, AU07, AU23) fires reliably only where the baseline's lips are thicker, e.g. when the same
      video also smiles (see :data:`SAMPLE_EXPRESSIONS`).
    * sad: inner brows raised, lids narrowed, lip corners down. Only AU01 rises (+0.15): mediapipe's
      ``mouthFrown`` (AU15) hardly moves on this face and its mesh does not follow brows drawn together
      (AU04), so the rules call it neutral; it is not used by :func:`write_sample_corpus`.

    Each displacement field is computed once per expression and image size (for the 240 x 240
    :func:`face_image` crop, whose landmark positions it uses); a frame costs two remaps, about 2 ms.
    """
    return talking_face_frame(face, jaw_open, head_shift, expression=expression, strength=strength)


def expression_displacement(expression: str, strength: float = 1.0, shape: tuple[int, int] = (240, 240)
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Forward displacement ``(dx, dy)`` in pixels, each ``(H, W)`` float32, of ``expression`` at ``strength``
    (the relaxed neutral face plus ``strength`` times the expression's own field)."""
    if expression not in EXPRESSIONS:
        raise ValueError(f"expression {expression!r}: choose from {', '.join(EXPRESSIONS)}")
    base = _expression_field("neutral", *shape)
    if expression == "neutral" or strength == 0:
        return base[0], base[1]
    field = base + np.float32(strength) * _expression_field(expression, *shape)
    return field[0], field[1]


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, ...]:
    """Pixel rows and columns (float32) and the jaw warp's weights: how far below the nose, how near the
    face's midline (read-only, cached)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    below_nose = np.clip((ys - _NOSE_Y) / (_CHIN_Y - _NOSE_Y), 0.0, 1.0)
    across_face = np.exp(-0.5 * ((xs - _FACE_X) / 45.0) ** 2)
    for array in (ys, xs, below_nose, across_face):
        array.setflags(write=False)
    return ys, xs, below_nose, across_face


@functools.lru_cache(maxsize=32)
def _expression_field(expression: str, h: int, w: int) -> np.ndarray:
    """(2, H, W) float32 forward displacement of one expression at full strength (read-only, cached).

    "neutral" is relative to the photograph, the others relative to "neutral". Built from Gaussian bumps on
    the landmarks above, in face-crop coordinates."""
    ys, xs, below_nose, across_face = _grid(h, w)
    field = np.zeros((2, h, w), np.float32)

    def bump(centre, sx, sy):
        return np.exp(-0.5 * (((xs - centre[0]) / sx) ** 2 + ((ys - centre[1]) / sy) ** 2))

    def lip_corners(outward, up, sigma=9.0):
        (rx, ry), (lx, ly) = _LIP_CORNERS
        right, left = bump((rx, ry), sigma, sigma), bump((lx, ly), sigma, sigma)
        field[0] += outward * (left - right)
        field[1] -= up * (left + right)

    def brows(inner_up=0.0, outer_up=0.0, together=0.0, sx=8.0, sy=6.0):
        for (x, y), inward in zip(_INNER_BROWS, (1.0, -1.0)):
            b = bump((x, y), sx, sy)
            field[1] -= inner_up * b
            field[0] += inward * together * b
        for centre in _OUTER_BROWS:
            field[1] -= outer_up * bump(centre, sx, sy)

    def eyes_wider(amount):  # a vertical stretch about each eye's centre
        for x, y in _EYES:
            field[1] += amount * np.tanh((ys - y) / 3.0) * bump((x, y), 9.0, 6.0)

    def lids_closer(amount):  # upper lids down, lower lids up
        for x, y in _EYES:
            field[1] += amount * (bump((x, y - 4.0), 8.0, 3.0) - bump((x, y + 3.5), 8.0, 3.0))

    def cheeks_up(amount, sigma=7.0, lateral=4.0):
        for (x, y), outward in zip(_EYES, (-1.0, 1.0)):
            field[1] -= amount * bump((x + outward * lateral, y + 7.0), 1.3 * sigma, sigma)

    def jaw(amount):  # as talking_face_frame's jaw_open
        field[1] += amount * below_nose * across_face

    def lips(close=0.0, thin_upper=0.0, thin_lower=0.0, upper_down=0.0):
        # close: the inner lip edges meet; thin_*: the outer red-lip edges move toward the mouth line;
        # upper_down: the whole upper lip lowers (less upper-lip raise)
        field[1] += close * (bump((_MOUTH_X, _INNER_UPPER_Y - 0.8), 13.0, 3.0)
                             - bump((_MOUTH_X, _INNER_LOWER_Y + 0.7), 13.0, 3.0))
        field[1] += thin_upper * bump((_MOUTH_X, _UPPER_LIP_Y - 2.6), 16.0, 3.0)
        field[1] -= thin_lower * bump((_MOUTH_X, _LOWER_LIP_Y + 1.3), 16.0, 3.0)
        field[1] += upper_down * bump((_MOUTH_X, _UPPER_LIP_Y - 1.6), 10.0, 4.0)

    # Amplitudes in pixels, tuned on mediapipe's estimates (see expression_frame); the neutral face's lowered
    # upper lip keeps it clear of the nose-wrinkle (AU09) measure's threshold.
    if expression == "neutral":
        lip_corners(-3.0, -5.0)
        lips(upper_down=1.0)
    elif expression == "happy":
        lip_corners(4.0, 6.0)
        cheeks_up(4.0)
    elif expression == "surprise":
        brows(inner_up=5.0, outer_up=5.0)
        eyes_wider(2.0)
        jaw(4.0)
    elif expression == "angry":
        brows(inner_up=-4.0, outer_up=-3.0, together=2.0)
        lids_closer(1.5)
        lips(close=1.0, thin_upper=2.0, thin_lower=4.0)
        jaw(-3.0)  # clenched: talking opens the mouth less, which keeps the lips thin (AU23)
    elif expression == "sad":
        brows(inner_up=4.0, sx=6.0, sy=4.0)
        lids_closer(0.8)
        lip_corners(-1.0, -4.0)
    field.setflags(write=False)
    return field


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


# Expressions of each sample video's lively stretches, in order (cycled for more videos or stretches): each
# of happy, surprise and angry on three of the default corpus's twelve lively stretches, neutral on the rest.
# The AU labels subtract a per-video resting baseline (a low percentile of each AU), so the pairs matter:
# "angry" shares its video with "happy", whose smile thickens the lips mediapipe sees and so sets the
# lip-thinning (AU23) baseline that anger needs (with only neutral stretches beside it, anger fired on about
# 20-40% of its frames instead of 85-90%); "surprise" (brows raised) shares none with "happy" or "angry": it
# lowers the brow-lowerer (AU04) baseline, and the neutral face would then show AU04, most of anger.
SAMPLE_EXPRESSIONS = (("happy", "angry"), ("surprise", "neutral"), ("angry", "happy"), ("neutral", "surprise"),
                      ("happy", "angry"), ("surprise", "neutral"))
_EXPRESSION_RAMP_S = 0.3  # onset and offset of an expression


def write_sample_corpus(root: str | Path, num_videos: int = 6, stretches: int = 4, stretch_s: float = 4.0,
                        pause_s: float = 1.5, expressions: bool = True) -> Path:
    """A small deterministic talking-face corpus whose loudness and facial activity vary within each video.

    Each video alternates calm and lively stretches of speech (quiet voice and a nearly still jaw vs a loud
    voice and a moving jaw) separated by pauses, so each stretch becomes one segment; a slow head sway runs
    throughout, which the face-activation measure must ignore. Three speakers (folders), two videos each.

    With ``expressions`` the face is the relaxed "neutral" one of :func:`expression_frame`, and lively
    stretches pose the expressions of :data:`SAMPLE_EXPRESSIONS` (fading in and out over 0.3 s, at strength
    0.8-1), so the AU pseudo-labels are happiness, surprise or anger on some lively stretches and neutral
    elsewhere; without, the face is the photograph's and only the jaw moves (AU labels all neutral).
    """
    root = Path(root)
    for v in range(num_videos):
        path = root / f"speaker{v % 3}" / f"talk_{v:02d}.mp4"
        if not path.exists():
            frame, num_frames, fps, audio = _sample_video(v, stretches, stretch_s, pause_s, expressions)
            write_media(path, frame, num_frames, fps, audio)
    return root


def sample_stretch_expressions(video: int, stretches: int = 4) -> list[str]:
    """The expression posed in each speech stretch of video ``video`` (0-based) of :func:`write_sample_corpus`
    (with ``expressions``): "neutral" on calm stretches, :data:`SAMPLE_EXPRESSIONS` in turn on lively ones."""
    phase = int(np.random.default_rng(100 + video).integers(0, 2))  # the first draw of _sample_video's rng
    poses = SAMPLE_EXPRESSIONS[video % len(SAMPLE_EXPRESSIONS)]
    return [poses[(k // 2) % len(poses)] if (k + phase) % 2 == 1 else "neutral" for k in range(stretches)]


def _sample_video(v: int, stretches: int, stretch_s: float, pause_s: float, expressions: bool,
                  face: np.ndarray | None = None) -> tuple[Callable[[int], np.ndarray], int, float, np.ndarray]:
    """Video ``v`` of :func:`write_sample_corpus`: (frame function, number of frames, fps, audio)."""
    face = face_image() if face is None else face
    fps = 25.0
    period = stretch_s + pause_s
    duration_s = stretches * period
    rng = np.random.default_rng(100 + v)
    phase = int(rng.integers(0, 2))
    lively_jaw = rng.uniform(6.0, 12.0)
    quiet, loud = -32.0 + rng.uniform(-3, 3), -14.0 + rng.uniform(-3, 3)
    # Per stretch: its expression and peak strength (calm stretches and pauses stay neutral).
    stretch_pose = sample_stretch_expressions(v, stretches)
    peaks = np.random.default_rng(200 + v).uniform(0.8, 1.0, stretches)

    def lively(t):
        return ((np.asarray(t) // period).astype(int) + phase) % 2 == 1

    def speaking(t):
        return (np.asarray(t) % period) < stretch_s

    def frame(i):
        t = i / fps
        jaw = lively_jaw * 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t)) if lively(t) and speaking(t) else 1.0
        sway = (4 * np.sin(2 * np.pi * 0.3 * t + v), 2 * np.sin(2 * np.pi * 0.2 * t))
        if not expressions:
            return talking_face_frame(face, jaw, sway)
        k = min(int(t // period), stretches - 1)
        within = t - k * period
        onset = np.clip(min(within, stretch_s - within) / _EXPRESSION_RAMP_S, 0.0, 1.0)
        strength = peaks[k] * onset * onset * (3 - 2 * onset)  # smoothstep
        return talking_face_frame(face, jaw, sway, expression=stretch_pose[k], strength=float(strength))

    def level(t):
        return np.where(speaking(t), np.where(lively(t), loud, quiet), -120.0)

    audio = voiced_speech(duration_s, level, seed=v, f0=rng.uniform(110, 220), pauses=False)
    return frame, int(duration_s * fps), fps, audio


# Prosody of each class, as acted emotions differ on average (Banse & Scherer 1996; Juslin & Laukka 2003):
# (mean, sd) of mean pitch (x the speaker's base pitch), intonation range (fraction of the pitch), voiced
# level (dBFS), syllable rate (Hz) and spectral tilt (lower: brighter, more vocal effort). Per utterance each
# is drawn from its normal, so neighbouring classes overlap (happy and angry most: both high and fast).
EMOTION_PROSODY = {
    "neutral": {"pitch": (1.00, 0.05), "range": (0.08, 0.02), "level": (-24.0, 2.0), "rate": (4.0, 0.3),
                "tilt": (1.00, 0.08)},
    "happy": {"pitch": (1.22, 0.07), "range": (0.22, 0.04), "level": (-20.0, 2.0), "rate": (4.6, 0.35),
              "tilt": (0.85, 0.08)},
    "angry": {"pitch": (1.18, 0.07), "range": (0.14, 0.04), "level": (-17.0, 2.0), "rate": (5.3, 0.4),
              "tilt": (0.70, 0.08)},
    "sad": {"pitch": (0.90, 0.05), "range": (0.04, 0.015), "level": (-30.0, 2.5), "rate": (3.0, 0.3),
            "tilt": (1.25, 0.10)},
}
MANIFEST_FILE = "manifest.csv"


def write_labeled_speech(root: str | Path, speakers: int = 6, per_class: int = 8,
                         classes: tuple[str, ...] = ("neutral", "happy", "angry", "sad"), seed: int = 0,
                         duration_s: float = 2.5) -> Path:
    """A small labelled speech-emotion corpus whose classes differ in prosody, for fine-tuning demos.

    Writes ``per_class`` utterances of each class for each speaker as 16 kHz mono FLAC,
    ``root/<speaker>/<speaker>_<label>_<nn>.flac``, and ``root/manifest.csv`` with the columns of
    ``finetune.recipes.MANIFEST_COLUMNS`` (``path`` relative to ``root``, ``split`` "" and ``fold`` -1; load
    it with ``finetune.recipes.prepare_csv(path, gender_column="gender", split_column="split",
    fold_column="fold")``). Speakers ``spk01``, ``spk02``, ... alternate female and male; each has its own
    base pitch (female about 210 Hz, male about 120 Hz), loudness and speaking rate. Each utterance draws
    its class's prosody (:data:`EMOTION_PROSODY`) with random jitter, so the classes are learnable but
    overlap. The same arguments give the same bytes.

    Returns:
        The manifest's path.
    """
    unknown = [c for c in classes if c not in EMOTION_PROSODY]
    if unknown:
        raise ValueError(f"classes {unknown}: choose from {', '.join(EMOTION_PROSODY)}")
    import soundfile as sf

    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(speakers):
        speaker, gender = f"spk{s + 1:02d}", ("female", "male")[s % 2]
        base_f0 = rng.normal(210.0, 15.0) if gender == "female" else rng.normal(120.0, 10.0)
        level_offset, rate_factor = rng.normal(0.0, 1.5), rng.normal(1.0, 0.06)
        for label in classes:
            prosody = EMOTION_PROSODY[label]
            for k in range(per_class):
                draw = {name: rng.normal(mean, sd) for name, (mean, sd) in prosody.items()}
                audio = voiced_speech(duration_s, level_db=draw["level"] + level_offset,
                                      seed=int(rng.integers(2**31)), f0=base_f0 * max(draw["pitch"], 0.5),
                                      syllable_rate=max(draw["rate"] * rate_factor, 1.5),
                                      pitch_range=max(draw["range"], 0.01), tilt=max(draw["tilt"], 0.3))
                rel = f"{speaker}/{speaker}_{label}_{k:02d}.flac"
                (root / speaker).mkdir(parents=True, exist_ok=True)
                sf.write(root / rel, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
                rows.append({"path": rel, "label": label, "speaker": speaker, "gender": gender, "split": "",
                             "fold": -1})
    manifest = root / MANIFEST_FILE
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker", "gender", "split", "fold"])
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["path"]))
    return manifest


def write_segment_table(folder: str | Path, tasks: tuple[str, ...] = ("energy", "face", "au"), media: int = 6,
                        segments_per_media: int = 4, speakers: int = 3, seed: int = 0) -> Path:
    """A ``data_prep label``-style folder written directly, without any video: short audio files, their
    segment table (``segments.parquet``) and the resolved ``label_config.json``.

    For training tests and demos that need labelled segments but not the face model. Media ``m`` is one
    16 kHz FLAC file (``folder/audio/media_<m>.flac``) of ``segments_per_media`` voiced segments of 2.5-3.5 s
    separated by 0.5 s pauses, alternating quiet (about -32 dBFS) and loud (about -14 dBFS) speech; speakers
    ``speaker0``, ``speaker1``, ... take the media in turn. The values a real run would measure are drawn
    for the built-in tasks (``energy_value`` is measured on the audio; lively, loud segments get faster
    faces and an emotion in their ``au_frac_<class>``), with gaps as in real data: the last media has no face
    at all and one segment of the first media a face in only 30% of its frames, so their face and au masks
    are False. A plug-in task's values come from its ``segment_values(None, segments, cfg)``, so it must need
    only the segment times (as ``tests.pretext.plugin_task:DurationTask``). Labels and masks are then assigned
    by each task's own ``assign_labels``, as ``data_prep label`` does, so the table has the same columns.

    Returns:
        ``folder``, ready for ``pretext/train.py --data``.
    """
    import pandas as pd
    import soundfile as sf

    from avpretext.common.io import write_atomic, write_json_atomic
    from data_prep.audio_features import frame_energy_db
    from data_prep.segments import LABEL_CONFIG_FILE, SEGMENTS_FILE
    from data_prep.label.config import build_label_config
    from pretext.tasks import get_task

    folder = Path(folder)
    config = build_label_config({"tasks": list(tasks)})
    task_of = {name: get_task(name) for name in config.tasks}
    rng = np.random.default_rng(seed)
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    rows = []
    for m in range(media):
        media_id = f"media_{m:02d}"
        audio_path = folder / "audio" / f"{media_id}.flac"
        phase = int(rng.integers(0, 2))
        pieces, segments, lively, position = [], [], [], 0.0
        for k in range(segments_per_media):
            loud = (k + phase) % 2 == 1
            duration = round(float(rng.uniform(2.5, 3.5)), 2)
            level = (-14.0 if loud else -32.0) + rng.uniform(-3, 3)
            pieces += [voiced_speech(duration, level, seed=seed * 1000 + m * 100 + k, pauses=False), gap]
            segments.append((round(position, 3), round(position + duration, 3)))
            lively.append(loud)
            position += duration + len(gap) / SAMPLE_RATE
        audio = np.concatenate(pieces)
        audio_path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(audio_path, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        values = {name: _segment_values(task, config.task_configs[name], audio, segments, lively, m, media, rng,
                                        frame_energy_db)
                  for name, task in task_of.items()}
        for k, (start, end) in enumerate(segments):
            row = {"segment_id": f"{media_id}_{k:04d}", "media_id": media_id, "speaker": f"speaker{m % speakers}",
                   "source": "audio", "audio_path": str(audio_path.resolve()), "start": start, "end": end,
                   "duration": round(end - start, 3)}
            for name in task_of:
                row.update(values[name][k])
            rows.append(row)
    table = pd.DataFrame(rows)
    for name, task in task_of.items():
        table, _ = task.assign_labels(table, config.task_configs[name])
    table["config_hash"] = config.hash()
    write_json_atomic(folder / LABEL_CONFIG_FILE, config.to_dict())
    write_atomic(folder / SEGMENTS_FILE, lambda tmp: table.to_parquet(tmp, index=False))
    return folder


def _segment_values(task, cfg, audio: np.ndarray, segments: list[tuple[float, float]], lively: list[bool],
                    m: int, media: int, rng: np.random.Generator, frame_energy_db) -> list[dict]:
    """One task's value columns for the segments of media ``m`` of :func:`write_segment_table`."""
    has_face = m < media - 1  # the last media is as an audio-only file: no face frames
    coverage = [(0.3 if (m == 0 and k == 0) else 1.0) if has_face else 0.0 for k in range(len(segments))]
    if task.name == "energy":
        return [{"energy_value": float(np.mean(frame_energy_db(
                     audio[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]))), "energy_speech_fraction": 1.0}
                for start, end in segments]
    if task.name == "face":  # mean landmark speed, inter-ocular distances per second
        return [{"face_value": float(rng.uniform(0.08, 0.15) if loud else rng.uniform(0.02, 0.06))
                 if cov else np.nan, "face_coverage": cov} for loud, cov in zip(lively, coverage)]
    if task.name == "au":
        names = cfg.class_names
        rows = []
        for k, (loud, cov) in enumerate(zip(lively, coverage)):
            # A learned mapping also writes each class's mean probability (au_prob_*), as the task does.
            columns = ("au_frac", "au_prob") if cfg.mapping == "learned" else ("au_frac",)
            if not cov:
                rows.append({"au_coverage": 0.0, **{f"{col}_{c}": np.nan for col in columns for c in names}})
                continue
            fractions = np.zeros(len(names))
            emotion = 1 + (m + k) % (len(names) - 1) if loud else 0  # lively stretches pose an emotion
            fractions[emotion] = rng.uniform(0.4, 0.9)
            fractions[0] += 1.0 - fractions.sum()
            rows.append({"au_coverage": cov, **{f"au_frac_{c}": float(f) for c, f in zip(names, fractions)},
                         **({f"au_prob_{c}": float(f) for c, f in zip(names, fractions)} if len(columns) > 1
                            else {})})
        return rows
    return task.segment_values(None, segments, cfg, None)
