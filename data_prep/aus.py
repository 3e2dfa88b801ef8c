"""Action-unit (AU) intensity estimates from mediapipe blendshapes and mesh geometry.

Mediapipe's 52 ARKit-style blendshapes are not FACS AUs, and several are unusable on real faces (measured:
``cheekSquint`` (AU6) and ``noseSneer`` (AU9) stay below 1e-4; ``mouthPress`` never passes 0.21; opposing
channels such as ``browInnerUp`` and ``browDown`` never fire together). The estimates below therefore mix
blendshapes with geometric measures of the mesh:

=====  ==========================  ===========================================================================
AU     name                        source
=====  ==========================  ===========================================================================
AU01   inner brow raiser           ``browInnerUp``
AU02   outer brow raiser           mean ``browOuterUp{Left,Right}``
AU04   brow lowerer                max(mean ``browDown*``, geometry: inner brows drawn together and lowered
                                   toward the eyes). The geometric part lets AU4 co-occur with AU1 (sad/fear
                                   brows), which the blendshapes never show.
AU05   upper lid raiser            max(mean ``eyeWide*``, geometry: eye aperture above neutral)
AU06   cheek raiser                mean ``eyeSquint*`` (``cheekSquint*`` is always ~0)
AU07   lid tightener               geometry: eye aperture narrowing (lid distance / eye width), blinks excluded
AU09   nose wrinkler               geometry: nose wing to upper lip distance shortening (``noseSneer`` is ~0)
AU10   upper lip raiser            mean ``mouthUpperUp*``
AU12   lip corner puller           mean ``mouthSmile*``
AU14   dimpler                     mean ``mouthDimple*``
AU15   lip corner depressor        mean ``mouthFrown*``
AU17   chin raiser                 ``mouthShrugLower``
AU20   lip stretcher               mean ``mouthStretch*``
AU23   lip tightener               geometry: red-lip height thinning
AU24   lip pressor                 mean ``mouthPress*``
AU25   lips part                   geometry: inner-lip gap
AU26   jaw drop                    ``jawOpen``
=====  ==========================  ===========================================================================

Geometric measures are in units of the inter-ocular distance and mapped to 0..1 around reference values of
neutral faces (``_GEOMETRY_REFERENCE``, measured on the real talking-face clips); identity offsets that remain
are removed at labelling time by subtracting a per-speaker (or per-video) baseline. All estimates are raw
intensities in 0..1; they are not calibrated against FACS coders.
"""
from __future__ import annotations

import numpy as np

from . import geometry

AU_NAMES = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17",
            "AU20", "AU23", "AU24", "AU25", "AU26")

BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
_B = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}

# Mesh points for the geometric AUs.
_INNER_BROWS = (107, 336)
_EYE_INNER = (133, 362)
_LIDS = ((159, 145), (386, 374))  # (upper, lower) lid centre, right and left eye
_EYE_CORNERS = ((33, 133), (362, 263))
_NOSE_WINGS = (98, 327)
_UPPER_LIP_TOP = (0, 37, 267)
_LIP_OUTER_INNER = ((0, 13), (17, 14))  # (outer, inner) points of the upper and lower lip
_INNER_LIPS = (13, 14)

# (neutral value, value at full intensity) of each geometric measure, in inter-ocular distances (eye
# aperture: lid distance / eye width). Neutral = median over the 6,929 face frames of the 41 real talking-face
# clips in shared/data/talking_faces; full = about the 5th (or 95th) percentile.
_GEOMETRY_REFERENCE = {
    "brow_gap": (0.51, 0.42),  # AU4: inner brows drawn together
    "brow_eye": (0.42, 0.30),  # AU4: brows lowered toward the eyes
    "eye_narrow": (0.36, 0.18),  # AU7: lids tightened
    "eye_wide": (0.38, 0.50),  # AU5: lids raised (eyeWide alone missed posed surprise)
    "nose_lip": (0.37, 0.30),  # AU9: nose wing pulled toward the upper lip
    "lip_height": (0.26, 0.16),  # AU23: red lips thinned
    "lip_gap": (0.0, 0.35),  # AU25: lips apart
}


def _mean(blendshapes: np.ndarray, *names: str) -> np.ndarray:
    return blendshapes[..., [_B[n] for n in names]].mean(-1)


def _ramp(value: np.ndarray, key: str, reference: str | None = None) -> np.ndarray:
    neutral, full = _GEOMETRY_REFERENCE[reference or key]
    return np.clip((value - neutral) / (full - neutral), 0.0, 1.0)


def geometric_measures(points: np.ndarray) -> dict[str, np.ndarray]:
    """Distances on isotropic landmarks ``(T, 478, 3)``, each ``(T,)`` in inter-ocular distances."""
    iod = geometry.interocular_distance(points)

    def dist(a, b):
        return np.linalg.norm(points[:, a, :2] - points[:, b, :2], axis=-1) / iod

    brow_gap = dist(*_INNER_BROWS)
    brow_eye = (dist(_INNER_BROWS[0], _EYE_INNER[0]) + dist(_INNER_BROWS[1], _EYE_INNER[1])) / 2
    aperture = np.mean([dist(u, l) / dist(*c) for (u, l), c in zip(_LIDS, _EYE_CORNERS)], axis=0)
    nose_lip = np.mean([dist(w, _UPPER_LIP_TOP[0]) for w in _NOSE_WINGS], axis=0)
    lip_height = dist(*_LIP_OUTER_INNER[0]) + dist(*_LIP_OUTER_INNER[1])
    lip_gap = dist(*_INNER_LIPS)
    return {"brow_gap": brow_gap, "brow_eye": brow_eye, "eye_aperture": aperture, "nose_lip": nose_lip,
            "lip_height": lip_height, "lip_gap": lip_gap}


def estimate_aus_mediapipe(blendshapes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """AU intensity estimates, 0..1.

    Args:
        blendshapes: (T, 52) mediapipe blendshape scores, in :data:`BLENDSHAPE_NAMES` order.
        points: (T, 478, 3) isotropic landmarks (see :func:`geometry.to_isotropic`).

    Returns:
        (T, len(AU_NAMES)) float32, NaN where the inputs are NaN (no face).
    """
    b = blendshapes.astype(np.float32)
    g = geometric_measures(points)
    blink = _mean(b, "eyeBlinkLeft", "eyeBlinkRight")
    brow_geometry = (_ramp(g["brow_gap"], "brow_gap") + _ramp(g["brow_eye"], "brow_eye")) / 2
    au = {
        "AU01": b[:, _B["browInnerUp"]],
        "AU02": _mean(b, "browOuterUpLeft", "browOuterUpRight"),
        "AU04": np.maximum(_mean(b, "browDownLeft", "browDownRight"), brow_geometry),
        "AU05": np.maximum(_mean(b, "eyeWideLeft", "eyeWideRight"), _ramp(g["eye_aperture"], "eye_aperture", "eye_wide")),
        "AU06": np.maximum(_mean(b, "eyeSquintLeft", "eyeSquintRight"), _mean(b, "cheekSquintLeft", "cheekSquintRight")),
        # A blink closes the lids without tightening them.
        "AU07": _ramp(g["eye_aperture"], "eye_aperture", "eye_narrow") * (blink < 0.5),
        "AU09": np.maximum(_ramp(g["nose_lip"], "nose_lip"), _mean(b, "noseSneerLeft", "noseSneerRight")),
        "AU10": _mean(b, "mouthUpperUpLeft", "mouthUpperUpRight"),
        "AU12": _mean(b, "mouthSmileLeft", "mouthSmileRight"),
        "AU14": _mean(b, "mouthDimpleLeft", "mouthDimpleRight"),
        "AU15": _mean(b, "mouthFrownLeft", "mouthFrownRight"),
        "AU17": b[:, _B["mouthShrugLower"]],
        "AU20": _mean(b, "mouthStretchLeft", "mouthStretchRight"),
        # mouthPress reaches ~0.2 on every bilabial while talking: it is AU24's estimate, not AU23's.
        "AU23": _ramp(g["lip_height"], "lip_height"),
        "AU24": _mean(b, "mouthPressLeft", "mouthPressRight"),
        "AU25": _ramp(g["lip_gap"], "lip_gap"),
        "AU26": b[:, _B["jawOpen"]],
    }
    out = np.stack([au[name] for name in AU_NAMES], axis=-1).astype(np.float32)
    out[~np.isfinite(b).all(-1)] = np.nan
    return out
