"""Face geometry on mediapipe's 478-point mesh: scale, rigid alignment and head pose.

Landmarks are handled in isotropic image coordinates: mediapipe's normalised ``x`` and ``z`` are scaled by
the frame width and ``y`` by its height (its ``z`` uses roughly the same scale as ``x``).
"""
from __future__ import annotations

import numpy as np

# Mesh indices (subject's right = image left). Eye corners and nose/forehead points move little with
# expression, so they define the rigid frame used to remove head motion.
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 33, 133, 362, 263
RIGID_POINTS = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 8, 234, 454])

# Named regions for facial activation (mesh indices). Configurable by name in the label config.
_LIPS = [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
         270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415]
_JAW = [152, 148, 176, 149, 150, 136, 172, 58, 132, 377, 400, 378, 379, 365, 397, 288, 361]
_BROWS = [46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336]
_EYES = [7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
         249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466]
_CHEEKS = [50, 101, 36, 205, 187, 123, 116, 117, 118, 280, 330, 266, 425, 411, 352, 345, 346, 347]
_NOSE = [48, 64, 98, 129, 278, 294, 327, 358, 2, 94]
REGIONS: dict[str, np.ndarray] = {
    "all": np.arange(468),  # the mesh without the 10 iris points (gaze is not expression)
    "mouth": np.array(_LIPS + _JAW),
    "upper": np.array(_BROWS + _EYES),
    "brows": np.array(_BROWS),
    "eyes": np.array(_EYES),
    "lower": np.array(_LIPS + _JAW + _CHEEKS + _NOSE),
    "no_mouth": np.array(_BROWS + _EYES + _CHEEKS + _NOSE),
}


def to_isotropic(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised mediapipe landmarks ``(..., 478, 3)`` to pixel-scaled coordinates of the same shape."""
    scale = np.array([width, height, width], dtype=np.float32)
    return landmarks.astype(np.float32) * scale


def interocular_distance(points: np.ndarray) -> np.ndarray:
    """Distance between the eye centres (mean of each eye's corners). ``(..., 478, 3) -> (...)``."""
    right = (points[..., RIGHT_EYE_OUTER, :] + points[..., RIGHT_EYE_INNER, :]) / 2
    left = (points[..., LEFT_EYE_OUTER, :] + points[..., LEFT_EYE_INNER, :]) / 2
    return np.linalg.norm(left - right, axis=-1)


def align_to_reference(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Remove head motion: similarity-align each frame's mesh to ``reference`` on the rigid points.

    Args:
        points: (T, 478, 3) isotropic landmarks (NaN rows for frames without a face are passed through).
        reference: (478, 3) mesh in the same coordinates (e.g. the per-video median face).

    Returns:
        (T, 478, 3) aligned meshes, expressed in units of the reference's inter-ocular distance, so that
        motion is comparable across face sizes and camera distances.
    """
    ref = reference[RIGID_POINTS].astype(np.float64)
    ref_center = ref.mean(0)
    ref0 = ref - ref_center
    out = np.full(points.shape, np.nan, dtype=np.float32)
    iod = float(interocular_distance(reference))
    for t in range(points.shape[0]):
        src = points[t, RIGID_POINTS].astype(np.float64)
        if not np.all(np.isfinite(src)):
            continue
        src_center = src.mean(0)
        src0 = src - src_center
        # Kabsch with uniform scale (Umeyama): R minimises ||R s - r|| over the rigid points.
        u, s, vt = np.linalg.svd(src0.T @ ref0)
        d = np.sign(np.linalg.det(u @ vt))
        fix = np.diag([1.0, 1.0, d])
        rotation = u @ fix @ vt
        scale = (s * np.diag(fix)).sum() / (src0 ** 2).sum()
        aligned = (points[t].astype(np.float64) - src_center) @ rotation * scale + ref_center
        out[t] = aligned / iod
    return out


def head_pose_degrees(matrix: np.ndarray) -> np.ndarray:
    """(pitch, yaw, roll) in degrees from mediapipe's 4x4 facial transformation matrix ``(..., 4, 4)``."""
    r = matrix[..., :3, :3]
    r = r / np.linalg.norm(r, axis=-2, keepdims=True)  # the matrix may carry a uniform scale
    pitch = np.degrees(np.arctan2(r[..., 2, 1], r[..., 2, 2]))
    yaw = np.degrees(np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0)))
    roll = np.degrees(np.arctan2(r[..., 1, 0], r[..., 0, 0]))
    return np.stack([pitch, yaw, roll], axis=-1).astype(np.float32)
