"""Sample corpora for the demo and the tests: talking-face videos whose voice and face vary within each video,
and a labelled speech-emotion set whose classes differ in prosody. The same arguments give the same files."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from .face import face_image, talking_face_frame
from .speech import SAMPLE_RATE, voiced_speech
from .video import AudioTrack, VideoTrack, write_media


def write_talking_face(path: str | Path, duration_s: float, fps: float = 25.0, jaw_amplitude: float = 6.0,
                       jaw_rate_hz: float = 4.0, head_motion: float = 0.0, level_db=-20.0, seed: int = 0,
                       audio: bool = True, faststart: bool = False) -> Path:
    """A talking-face video: the jaw opens at ``jaw_rate_hz`` by up to ``jaw_amplitude`` px (0: still face),
    the head sways by ``head_motion`` px, over voiced audio at ``level_db`` (none when ``audio`` is False)."""
    face = face_image()
    num_frames = int(round(duration_s * fps))

    def frame(i: int) -> np.ndarray:
        t = i / fps
        jaw = jaw_amplitude * 0.5 * (1 - np.cos(2 * np.pi * jaw_rate_hz * t))
        shift = (head_motion * np.sin(2 * np.pi * 0.5 * t), head_motion * 0.5 * np.sin(2 * np.pi * 0.3 * t))
        return talking_face_frame(face, jaw, shift)

    sound = AudioTrack(voiced_speech(duration_s, level_db, seed=seed)) if audio else None
    return write_media(path, VideoTrack(frame, num_frames, fps), sound, faststart=faststart)


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
            write_media(path, *_sample_video(v, stretches, stretch_s, pause_s, expressions))
    return root


def sample_stretch_expressions(video: int, stretches: int = 4) -> list[str]:
    """The expression posed in each speech stretch of video ``video`` (0-based) of :func:`write_sample_corpus`
    (with ``expressions``): "neutral" on calm stretches, :data:`SAMPLE_EXPRESSIONS` in turn on lively ones."""
    phase = int(np.random.default_rng(100 + video).integers(0, 2))  # the first draw of _sample_video's rng
    poses = SAMPLE_EXPRESSIONS[video % len(SAMPLE_EXPRESSIONS)]
    return [poses[(k // 2) % len(poses)] if (k + phase) % 2 == 1 else "neutral" for k in range(stretches)]


def _sample_video(v: int, stretches: int, stretch_s: float, pause_s: float, expressions: bool,
                  face: np.ndarray | None = None) -> tuple[VideoTrack, AudioTrack]:
    """Video ``v`` of :func:`write_sample_corpus`: its picture and sound."""
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
    return VideoTrack(frame, int(duration_s * fps), fps), AudioTrack(audio)


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
