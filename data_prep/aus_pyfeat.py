"""Optional AU backend: py-feat's detector (``pip install 'avpretext[pyfeat]'``).

py-feat (2.x) ships no weights: its detectors download them from a model hub when built, so this backend
works only on machines that can reach the hub or already have the weights in py-feat's resource folder. It
runs next to mediapipe (which still provides landmarks, pose and the tracked face) and writes
``face/aus_pyfeat.npy``: py-feat's AU estimates for the same analysed frames, for the face whose box overlaps
the tracked face most. Select it at labelling time with ``[au] source = "pyfeat"`` (its values are AU
probabilities: thresholds around 0.5 suit them better than the mediapipe defaults).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .decode import FRAME_DECODERS, VideoInfo
from .store import NpyStreamWriter

PYFEAT_AU_ARRAY = "aus_pyfeat"  # its face array: face/aus_pyfeat.npy, read back by face_signals.load_face_arrays


class PyFeatUnavailable(RuntimeError):
    """py-feat is not installed, or its weights cannot be loaded (offline without a cache)."""


def pyfeat_weights_available() -> tuple[bool, str]:
    """(available, reason): whether py-feat imports and its default detectors' weights are cached locally."""
    try:
        import feat  # noqa: F401
        from feat.utils.io import get_resource_path
    except ImportError as err:
        return False, f"py-feat is not installed ({err}); install the extra: pip install 'avpretext[pyfeat]'"
    resources = Path(get_resource_path())
    cached = [p for p in resources.rglob("*") if p.suffix in {".pt", ".pth", ".safetensors", ".json", ".ubj"}
              and "models--py-feat" in str(p)]
    if not cached:
        return False, (f"py-feat's weights are not cached in {resources}; py-feat downloads them from its model "
                       "hub at run time, which this machine cannot reach")
    return True, ""


class PyFeatAUBackend:
    """py-feat ``Detectorv1`` (RetinaFace + MobileFaceNet + XGBoost AU model) on CPU or a GPU.

    Args:
        device: torch device string for py-feat's models.
        batch_size: frames per detector call.
    """

    def __init__(self, device: str = "cpu", batch_size: int = 16):
        try:
            from feat.detector import Detectorv1
        except ImportError as err:
            raise PyFeatUnavailable(f"py-feat is not installed ({err}): pip install 'avpretext[pyfeat]'") from err
        try:
            self.detector = Detectorv1(face_model="retinaface", landmark_model="mobilefacenet", au_model="xgb",
                                       emotion_model=None, identity_model=None, gaze_model=None, device=device)
        except Exception as err:  # hub download errors come in many types
            raise PyFeatUnavailable(f"py-feat could not load its weights ({type(err).__name__}: {err}); they "
                                    "are downloaded from its model hub on first use") from err
        self.batch_size = batch_size
        self.au_names: list[str] | None = None

    def rewrite_aus(self, path: str, face_dir: Path, options, timings: dict) -> list[str]:
        """Decode the analysed frames again and write ``aus_pyfeat.npy`` (T, n_aus). Returns the AU names."""
        import torch  # heavy; the py-feat backend is optional and the only user here

        bboxes = np.load(face_dir / "bbox.npy", mmap_mode="r")
        info = VideoInfo()
        frames = FRAME_DECODERS[options.decoder](path, info, max_fps=options.max_fps, max_side=options.max_side)
        writer = None
        batch: list[np.ndarray] = []
        index = 0
        started = time.perf_counter()

        def flush():
            nonlocal writer, index
            tensor = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()
            fex = self.detector.detect(tensor, data_type="tensor", batch_size=len(batch), progress_bar=False)
            names = [c for c in fex.columns if c.startswith("AU")]
            if writer is None:
                self.au_names = names
                writer = NpyStreamWriter(face_dir / f"{PYFEAT_AU_ARRAY}.npy", np.float32, (len(names),))
            h, w = batch[0].shape[:2]
            for k in range(len(batch)):
                rows = fex[fex["frame"] == k]
                writer.append(_row_for_tracked_face(rows, names, bboxes[index + k], w, h))
            index += len(batch)
            batch.clear()

        try:
            for _, rgb in frames:
                batch.append(rgb)
                if len(batch) == self.batch_size:
                    flush()
            if batch:
                flush()
        finally:
            if writer is not None:
                writer.close()
        timings["face"] += time.perf_counter() - started
        return self.au_names or []


def _row_for_tracked_face(rows, names: list[str], bbox: np.ndarray, width: int, height: int) -> np.ndarray:
    """AU row of the detection overlapping the tracked face's box most (NaN when none or untracked)."""
    empty = np.full(len(names), np.nan, dtype=np.float32)
    if len(rows) == 0 or not np.all(np.isfinite(bbox)):
        return empty
    x0, y0, x1, y1 = bbox * np.array([width, height, width, height])
    best, best_iou = None, 0.0
    for _, row in rows.iterrows():
        rx0, ry0 = row["FaceRectX"], row["FaceRectY"]
        rx1, ry1 = rx0 + row["FaceRectWidth"], ry0 + row["FaceRectHeight"]
        inter = max(0.0, min(x1, rx1) - max(x0, rx0)) * max(0.0, min(y1, ry1) - max(y0, ry0))
        union = (x1 - x0) * (y1 - y0) + (rx1 - rx0) * (ry1 - ry0) - inter
        iou = inter / union if union > 0 else 0.0
        if iou > best_iou:
            best, best_iou = row, iou
    if best is None:
        return empty
    return best[names].to_numpy(dtype=np.float32)
