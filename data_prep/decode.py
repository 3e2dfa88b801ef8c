"""Streaming decode of video frames and audio tracks.

Frames and audio are produced chunk by chunk so that memory does not grow with the length of a video.
PyAV is the default video decoder (measured faster and more robust here than decord, and it decodes a
truncated "faststart" mp4 up to the cut); decord is selectable. Audio is always decoded with PyAV: decord's
AudioReader holds the whole track in memory and is slower.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterator

import av
import numpy as np
from av.stream import Disposition
from PIL import Image, ImageOps, UnidentifiedImageError

SAMPLE_RATE = 16000


class DecodeError(RuntimeError):
    """A file that cannot be opened or decoded at all."""


@dataclass
class VideoInfo:
    """What decoding learned about a video stream (filled in while frames are read)."""

    width: int = 0  # analysed frame size, after rotation and resizing
    height: int = 0
    native_fps: float = 0.0
    duration_s: float = 0.0
    rotation: int = 0  # degrees applied to make the picture upright
    frames_decoded: int = 0
    frames_analysed: int = 0
    variable_frame_rate: bool = False
    truncated_at_s: float | None = None  # set when decoding stopped early on corrupt data
    warnings: list[str] = field(default_factory=list)


@dataclass
class AudioInfo:
    duration_s: float = 0.0
    source_rate: int = 0
    source_channels: int = 0
    truncated_at_s: float | None = None


def _open_container(path: str):
    try:
        return av.open(path, metadata_errors="ignore")
    except av.FFmpegError as err:
        raise DecodeError(f"cannot open as media ({type(err).__name__}: {err})") from err


def probe_streams(path: str) -> tuple[bool, bool]:
    """(has_video, has_audio) of a media file. Raises DecodeError when it cannot be opened."""
    with _open_container(path) as container:
        has_video = any(_is_real_video(s) for s in container.streams.video)
        return has_video, bool(container.streams.audio)


def _is_real_video(stream) -> bool:
    # Cover art in audio files (mp3, m4a) shows up as a one-frame video stream.
    return not (stream.disposition & Disposition.attached_pic)


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Frame size with the longer side at most ``max_side`` (even numbers, aspect kept)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


# Timestamps are quantised by the container's clock (milliseconds in Matroska, WebM, FLV and our VFR test
# files), so a frame of a stream at exactly the target rate can land up to 1 ms before its grid time.
TIMESTAMP_JITTER_S = 0.001


class FrameSelector:
    """Keeps every frame up to ``fps`` frames per second, on presentation times.

    The cap applies to the frames' own times, never to the stream's average rate: a variable-frame-rate
    video keeps all its frames where it runs at or below ``fps`` and is thinned to a regular ``fps`` grid
    only where it runs faster. Frames with non-increasing times (duplicated timestamps) are dropped:
    mediapipe's VIDEO mode needs strictly increasing timestamps.
    """

    def __init__(self, fps: float | None):
        self.period = 1.0 / fps if fps else 0.0
        self.next_time = -np.inf
        self.last_ms = -1

    def keep(self, t: float) -> bool:
        ms = int(round(t * 1000))
        if ms <= self.last_ms or t < self.next_time - TIMESTAMP_JITTER_S:
            return False
        self.last_ms = ms
        # Advance on the grid so jittery timestamps do not drift, but never allow two kept frames closer
        # than half a period after a gap.
        grid_next = t + self.period if self.next_time == -np.inf else self.next_time + self.period
        self.next_time = max(grid_next, t + 0.5 * self.period)
        return True


def iter_frames_pyav(
    path: str, info: VideoInfo, max_fps: float | None = 30.0, max_side: int | None = 640
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, rgb)`` for the analysed frames, upright; ``rgb`` is (H, W, 3) uint8.

    PyAV does not apply rotation metadata (``frame.rotation``), so the array is rotated here. A decoding
    error after some frames were read (truncated file) ends the stream and is recorded in ``info``.
    """
    container = _open_container(path)
    with container:
        streams = [s for s in container.streams.video if _is_real_video(s)]
        if not streams:
            raise DecodeError("no video stream")
        stream = streams[0]
        stream.thread_type = "AUTO"
        info.native_fps = float(stream.average_rate or stream.guessed_rate or 0.0)  # an average under VFR
        selector = FrameSelector(max_fps)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        intervals = []
        last_t = None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base) - start
                info.frames_decoded += 1
                if last_t is not None:
                    intervals.append(t - last_t)
                last_t = t
                info.duration_s = max(info.duration_s, t)
                if not selector.keep(t):
                    continue
                rotation = int(getattr(frame, "rotation", 0) or 0) % 360
                if rotation % 180:
                    w, h = scaled_size(frame.height, frame.width, max_side)
                    w, h = h, w  # scale in the stored orientation, rotate after
                else:
                    w, h = scaled_size(frame.width, frame.height, max_side)
                rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
                if rotation:
                    # FFmpeg's display rotation is counter-clockwise; np.rot90 turns counter-clockwise too.
                    rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
                    info.rotation = rotation
                info.height, info.width = rgb.shape[:2]
                info.frames_analysed += 1
                yield t, rgb
        except (av.FFmpegError, EOFError) as err:
            if info.frames_decoded == 0:
                raise DecodeError(f"no decodable video frame ({type(err).__name__}: {err})") from err
            info.truncated_at_s = info.duration_s
            info.warnings.append(f"video decoding stopped at {info.duration_s:.2f} s: {type(err).__name__}: {err}")
        if info.frames_decoded == 0:
            raise DecodeError("video stream has no decodable frame")
        info.duration_s += 1.0 / info.native_fps if info.native_fps else 0.0
        info.variable_frame_rate = _is_variable_rate(intervals)
        declared = _declared_duration(container, stream)
        if info.truncated_at_s is None and declared and info.duration_s < declared - TRUNCATION_TOLERANCE_S:
            # Some cut files end without a decoding error: the index promises more than the data holds.
            info.truncated_at_s = info.duration_s
            info.warnings.append(f"video decoding stopped at {info.duration_s:.2f} s of {declared:.2f} s "
                                 "declared (truncated file)")


def iter_frames_decord(
    path: str, info: VideoInfo, max_fps: float | None = 30.0, max_side: int | None = 640, batch: int = 32
) -> Iterator[tuple[float, np.ndarray]]:
    """Like :func:`iter_frames_pyav` with decord (which applies rotation itself and fails on any truncation)."""
    import decord  # the alternative video backend: loaded only when chosen

    try:
        probe = decord.VideoReader(path, ctx=decord.cpu(0))
        width, height = probe.next().shape[1], probe.next().shape[0]
        del probe
        w, h = scaled_size(width, height, max_side)
        reader = decord.VideoReader(path, ctx=decord.cpu(0), width=w, height=h, num_threads=1)
    except (decord.DECORDError, RuntimeError) as err:
        raise DecodeError(f"decord cannot open the video ({type(err).__name__}: {err})") from err
    times = reader.get_frame_timestamp(np.arange(len(reader)))[:, 0].astype(np.float64)
    info.native_fps = float(reader.get_avg_fps())
    info.frames_decoded = len(reader)
    info.duration_s = float(times[-1] + 1.0 / info.native_fps) if len(times) else 0.0
    info.variable_frame_rate = _is_variable_rate(np.diff(times))
    selector = FrameSelector(max_fps)
    keep = [i for i, t in enumerate(times) if selector.keep(float(t))]
    for lo in range(0, len(keep), batch):
        idx = keep[lo:lo + batch]
        frames = reader.get_batch(idx).asnumpy()
        for i, rgb in zip(idx, frames):
            info.height, info.width = rgb.shape[:2]
            info.frames_analysed += 1
            yield float(times[i]), rgb


TRUNCATION_TOLERANCE_S = 0.5  # decoded streams this much shorter than their header says are truncated


def _declared_duration(container, stream) -> float | None:
    """How long ``stream`` says it is: its ``DURATION`` tag (Matroska/WebM keep one per stream), else its own
    duration (mp4), else the container's duration only when the file holds that one stream.

    The container's duration is its longest stream's, and for Matroska the stream's ``duration`` is that too:
    an audio track that really ends before the video (a clip looped with its slightly shorter audio: 492.8 s
    of audio beside 495 s of video) would otherwise look truncated."""
    tagged = _duration_tag(stream.metadata)
    if tagged is not None:
        return tagged
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if len(container.streams) == 1 and container.duration:
        return container.duration / 1e6
    return None


def _duration_tag(metadata: dict) -> float | None:
    """Seconds of a Matroska ``DURATION`` tag (``HH:MM:SS.fffffffff``; mkvmerge writes ``DURATION-eng``)."""
    text = next((v for k, v in metadata.items() if k.upper().split("-")[0] == "DURATION"), None)
    try:
        hours, minutes, seconds = str(text).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (ValueError, AttributeError):
        return None


def _is_variable_rate(intervals) -> bool:
    intervals = np.asarray(intervals, dtype=np.float64)
    if len(intervals) < 3:
        return False
    median = np.median(intervals)
    return bool(median > 0 and np.mean(np.abs(intervals - median) > 0.1 * median) > 0.05)


FRAME_DECODERS = {"pyav": iter_frames_pyav, "decord": iter_frames_decord}

# Still images above this size are refused before decoding: a 100-megapixel RGB image takes 300 MB once
# decoded, and a face needs a few hundred pixels (frames are downscaled to ``max_side`` anyway).
MAX_IMAGE_PIXELS = 100_000_000
# EXIF orientation tag value -> counter-clockwise degrees that make the picture upright (mirrored ones: 0).
_EXIF_ROTATION = {3: 180, 6: 270, 8: 90}
_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def iter_frames_image(path: str, info: VideoInfo, max_fps: float | None = None, max_side: int | None = 640
                      ) -> Iterator[tuple[float, np.ndarray]]:
    """Yield the one frame ``(0.0, rgb)`` of a still image: upright (EXIF orientation applied), 8-bit RGB
    (H, W, 3) uint8, downscaled so its longer side is at most ``max_side``. ``max_fps`` is ignored.

    Greyscale, palette, alpha and CMYK images are converted to RGB; grey images of more than 8 bits (16-bit
    TIFF or PNG) are scaled to 8 bits over their own range (each with a warning in ``info``).

    Raises:
        DecodeError: not an image, truncated or corrupt data, or more than :data:`MAX_IMAGE_PIXELS` pixels.
    """
    with warnings.catch_warnings():  # our own size limit below replaces Pillow's decompression-bomb warning
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise DecodeError("not a readable image (unknown format or corrupt header)") from None
        except Image.DecompressionBombError as err:
            raise DecodeError(f"image too large ({err})") from None
        except (OSError, ValueError) as err:
            raise DecodeError(f"cannot open as an image ({type(err).__name__}: {err})") from err
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DecodeError(f"image of {width} x {height} pixels ({width * height / 1e6:.0f} megapixels) is "
                                  f"over the {MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel limit; downscale it first")
            if getattr(image, "n_frames", 1) > 1:
                info.warnings.append(f"image holds {image.n_frames} frames or pages: only the first is analysed")
            if image.format == "JPEG" and max_side:
                image.draft("RGB", (max_side, max_side))  # JPEG decodes at 1/2, 1/4 or 1/8 scale: cheap
            try:
                image.load()
                orientation = image.getexif().get(0x0112, 1)
                upright = ImageOps.exif_transpose(image)
            except (OSError, ValueError, SyntaxError) as err:
                raise DecodeError(f"truncated or corrupt image data ({type(err).__name__}: {err})") from err
    if orientation != 1:
        info.rotation = _EXIF_ROTATION.get(orientation, 0)
        if not info.rotation:
            info.warnings.append(f"EXIF orientation {orientation} (mirrored) applied")
    rgb = _to_rgb8(upright, info)
    w, h = scaled_size(rgb.shape[1], rgb.shape[0], max_side)
    if (w, h) != (rgb.shape[1], rgb.shape[0]):
        import cv2  # only a still image larger than max_side needs it (0.4 s to import)

        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    info.height, info.width = rgb.shape[:2]
    info.frames_decoded = info.frames_analysed = 1
    yield 0.0, np.ascontiguousarray(rgb)


def _to_rgb8(image, info: VideoInfo) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a loaded PIL image of any mode, noting conversions in ``info.warnings``."""
    if image.mode in _HIGH_DEPTH_MODES:
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        grey = np.zeros(values.shape, np.uint8) if hi <= lo else \
            np.round(np.clip((np.nan_to_num(values, nan=lo) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
        info.warnings.append(f"greyscale image of more than 8 bits (mode {image.mode}): scaled to 8 bits over its "
                             f"range {lo:g}..{hi:g}")
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode in ("L", "LA", "1"):
        info.warnings.append(f"greyscale image (mode {image.mode}): analysed as grey RGB")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def iter_audio_chunks(path: str, info: AudioInfo, chunk_s: float = 10.0) -> Iterator[np.ndarray]:
    """Yield the first audio track as 16 kHz mono float32 chunks (about ``chunk_s`` seconds each).

    Raises:
        DecodeError: no audio stream, or not a single decodable audio frame.
    """
    container = _open_container(path)
    with container:
        if not container.streams.audio:
            raise DecodeError("no audio stream")
        stream = container.streams.audio[0]
        info.source_rate = int(stream.rate or 0)
        info.source_channels = int(stream.channels or 0)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        pending_len = 0
        chunk_len = int(chunk_s * SAMPLE_RATE)
        decoded_any = False
        try:
            for frame in container.decode(stream):
                decoded_any = True
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    pending.append(samples)
                    pending_len += len(samples)
                if pending_len >= chunk_len:
                    info.duration_s += pending_len / SAMPLE_RATE
                    yield np.concatenate(pending)
                    pending, pending_len = [], 0
        except (av.FFmpegError, EOFError) as err:
            if not decoded_any:
                raise DecodeError(f"no decodable audio ({type(err).__name__}: {err})") from err
            info.truncated_at_s = info.duration_s + pending_len / SAMPLE_RATE
        for out in resampler.resample(None):  # flush the resampler's delay line
            pending.append(out.to_ndarray().reshape(-1))
            pending_len += out.samples
        if not decoded_any:
            raise DecodeError("audio stream has no decodable frame")
        if pending_len:
            info.duration_s += pending_len / SAMPLE_RATE
            yield np.concatenate(pending)
        declared = _declared_duration(container, stream)
        if info.truncated_at_s is None and declared and info.duration_s < declared - TRUNCATION_TOLERANCE_S:
            info.truncated_at_s = info.duration_s
