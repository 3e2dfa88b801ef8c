"""Per-frame face signals of one video: mediapipe FaceLandmarker + a consistent choice of face.

For every analysed frame it stores whether a face was found, how many, and for the tracked face its 478
landmarks, 52 blendshapes, transformation matrix and bounding box; AU estimates and head pose are derived
from those afterwards, vectorised (:func:`write_derived_arrays`). Rows are streamed
to ``.npy`` files so memory does not grow with video length.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Iterable

import numpy as np

from . import aus, geometry
from .aus_pyfeat import PYFEAT_AU_ARRAY
from .store import NpyStreamWriter, iter_npy_chunks

NUM_LANDMARKS = 478
NUM_BLENDSHAPES = 52
# A tracked face whose landmark box has a shorter side below this many pixels of the analysed frame is
# "small" (a warning). FaceLandmarker's mesh model (Face Mesh V2) reads a 256 x 256 crop holding the face
# with a 25% margin on each side, so the face itself spans about 170 px of the model's input; below 80 px the
# crop is upsampled more than 2x and the model sees under half the detail it was trained on (landmarks
# jitter, blendshapes flatten). The face detector in front of it (BlazeFace short range) was trained on
# faces filling over 20% of the image ("faces within 2 m of the camera"): smaller ones, e.g. a 120 px face
# in a 320 x 240 frame (whose mesh box is about 45 x 54 px), are still found but near that limit, and an
# 80 px face in the same frame is not found at all (measured on the test face of avpretext.synthetic).
SMALL_FACE_PX = 80

# name -> (dtype, row shape); NaN rows mark frames without a tracked face.
FACE_ARRAYS = {
    "times": (np.float64, ()),
    "present": (np.bool_, ()),
    "num_faces": (np.uint8, ()),
    "landmarks": (np.float32, (NUM_LANDMARKS, 3)),  # mediapipe-normalised x, y, z
    "blendshapes": (np.float32, (NUM_BLENDSHAPES,)),
    "transform": (np.float32, (4, 4)),
    "bbox": (np.float32, (4,)),  # x0, y0, x1, y1, normalised
}


class FaceTracker:
    """Chooses which detected face to follow.

    The first face is the largest (ties broken by closeness to the image centre); afterwards the face whose
    box overlaps the previous choice most is kept, so a second person entering does not steal the track.
    When no face overlaps, the choice starts again from the largest.
    """

    def __init__(self, min_iou: float = 0.2):
        self.min_iou = min_iou
        self.previous: np.ndarray | None = None

    def choose(self, boxes: list[np.ndarray]) -> int | None:
        if not boxes:
            self.previous = None
            return None
        if self.previous is not None:
            overlaps = [_iou(self.previous, b) for b in boxes]
            best = int(np.argmax(overlaps))
            if overlaps[best] >= self.min_iou:
                self.previous = boxes[best]
                return best
        scores = [_area(b) - 0.1 * _centre_distance(b) ** 2 for b in boxes]
        best = int(np.argmax(scores))
        self.previous = boxes[best]
        return best


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def _centre_distance(box: np.ndarray) -> float:
    return float(np.hypot((box[0] + box[2]) / 2 - 0.5, (box[1] + box[3]) / 2 - 0.5))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = _area(np.array([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])]))
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def analyse_frames(frames: Iterable[tuple[float, np.ndarray]], landmarker, out_dir: Path,
                   timings: dict[str, float], still_image: bool = False) -> dict:
    """Run the landmarker on each frame and stream the chosen face's signals to ``out_dir/*.npy``.

    Args:
        frames: ``(time_s, rgb (H, W, 3) uint8)`` in increasing time.
        landmarker: a mediapipe FaceLandmarker in VIDEO mode (fresh for this video), or in IMAGE mode when
            ``still_image`` (each frame detected on its own: a photograph has no time).
        out_dir: folder for the arrays of :data:`FACE_ARRAYS`.
        timings: accumulates seconds spent in ``decode``, ``face`` (model and result conversion) and
            ``write``.

    Returns:
        Summary: frames analysed, frames with a face, frames with several faces, the most faces in one
        frame, and frames whose tracked face is smaller than :data:`SMALL_FACE_PX` (shorter side).
    """
    import mediapipe as mp  # heavy (seconds to import): loaded by the extraction workers only

    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {name: NpyStreamWriter(out_dir / f"{name}.npy", dt, shape) for name, (dt, shape) in FACE_ARRAYS.items()}
    tracker = FaceTracker()
    n_frames = n_face = n_multi = n_small = max_faces = 0
    nan = {name: np.full(shape, np.nan, dtype=dt) for name, (dt, shape) in FACE_ARRAYS.items() if dt == np.float32}
    try:
        frame_iter = iter(frames)
        while True:
            t0 = time.perf_counter()
            try:
                t, rgb = next(frame_iter)
            except StopIteration:
                break
            t1 = time.perf_counter()
            # PyAV pads rows of some widths (e.g. 360 px); mediapipe reads the buffer as packed rows.
            rgb = np.ascontiguousarray(rgb)
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
            if still_image:
                result = landmarker.detect(image)
            else:
                result = landmarker.detect_for_video(image, int(round(t * 1000)))
            t2 = time.perf_counter()
            timings["decode"] += t1 - t0
            timings["face"] += t2 - t1
            faces = result.face_landmarks
            boxes = []
            meshes = []
            for face in faces:
                mesh = np.array([(p.x, p.y, p.z) for p in face], dtype=np.float32)
                meshes.append(mesh)
                boxes.append(np.array([*mesh[:, :2].min(0), *mesh[:, :2].max(0)], dtype=np.float32))
            chosen = tracker.choose(boxes)
            t3 = time.perf_counter()
            timings["face"] += t3 - t2
            n_frames += 1
            writers["times"].append(np.float64(t))
            writers["num_faces"].append(np.uint8(min(len(faces), 255)))
            writers["present"].append(np.bool_(chosen is not None))
            if chosen is None:
                for name, row in nan.items():
                    writers[name].append(row)
            else:
                n_face += 1
                n_multi += len(faces) > 1
                max_faces = max(max_faces, len(faces))
                box = boxes[chosen]
                n_small += min((box[2] - box[0]) * rgb.shape[1], (box[3] - box[1]) * rgb.shape[0]) < SMALL_FACE_PX
                blend = np.array([c.score for c in result.face_blendshapes[chosen]], dtype=np.float32)
                matrix = np.asarray(result.facial_transformation_matrixes[chosen], dtype=np.float32).reshape(4, 4)
                writers["landmarks"].append(meshes[chosen])
                writers["blendshapes"].append(blend)
                writers["transform"].append(matrix)
                writers["bbox"].append(boxes[chosen])
            timings["write"] += time.perf_counter() - t3
    finally:
        t0 = time.perf_counter()
        for w in writers.values():
            w.close()
        timings["write"] += time.perf_counter() - t0
    return {"frames": n_frames, "face_frames": n_face, "multi_face_frames": n_multi, "max_faces": max_faces,
            "small_face_frames": n_small}


DERIVED_ARRAYS = ("aus", "pose")


def write_derived_arrays(face_dir: Path, width: int, height: int, chunk: int = 512) -> None:
    """Derive ``aus.npy`` (T, len(AU_NAMES)) and ``pose.npy`` (T, 3: pitch, yaw, roll in degrees) from the
    stored landmarks, blendshapes and transformation matrices, chunk by chunk.

    Vectorised over frames (much cheaper than per frame) and with flat memory; rerun it on an existing
    extraction when the AU mapping changes.
    """
    chunks = zip(iter_npy_chunks(face_dir / "landmarks.npy", chunk),
                 iter_npy_chunks(face_dir / "blendshapes.npy", chunk),
                 iter_npy_chunks(face_dir / "transform.npy", chunk))
    with NpyStreamWriter(face_dir / "aus.npy", np.float32, (len(aus.AU_NAMES),)) as au_writer, \
            NpyStreamWriter(face_dir / "pose.npy", np.float32, (3,)) as pose_writer:
        for landmarks, blendshapes, transform in chunks:
            points = geometry.to_isotropic(landmarks, width, height)
            with np.errstate(invalid="ignore", divide="ignore"):
                au_writer.append(aus.estimate_aus_mediapipe(blendshapes, points))
                pose_writer.append(geometry.head_pose_degrees(transform))


class FaceArrays(Mapping):
    """The arrays of one item's ``face/`` folder, opened when read (memory-mapped by default), never held.

    Labelling keeps every item of a corpus in hand at once (corpus-level baselines), and each open memory map
    holds a file descriptor: eagerly mapping ten arrays per video ran out of descriptors on 3,000 videos
    ("Too many open files"). Opening on access keeps the count at what the caller is using right now.
    """

    def __init__(self, face_dir: Path, names: list[str], mmap: bool):
        self.face_dir, self.names, self.mmap = face_dir, names, mmap

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise KeyError(name)
        return np.load(self.face_dir / f"{name}.npy", mmap_mode="r" if self.mmap else None)

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def load_face_arrays(face_dir: str | Path, mmap: bool = True) -> FaceArrays:
    """The arrays written by :func:`analyse_frames`, as a read-only mapping name -> array (memory-mapped by
    default; each read opens the file, see :class:`FaceArrays`)."""
    face_dir = Path(face_dir)
    names = [*FACE_ARRAYS, *DERIVED_ARRAYS]
    if (face_dir / f"{PYFEAT_AU_ARRAY}.npy").exists():  # written by the optional py-feat backend
        names.append(PYFEAT_AU_ARRAY)
    return FaceArrays(face_dir, names, mmap)
