"""A learned face-emotion mapping: per-frame face signals -> neutral + the six EMFACS emotion classes.

Hand-written EMFACS rules read mediapipe's blendshape-derived AU estimates poorly (docs/label_audit.md): the
blendshapes miss AU5 in anger and AU4 in fear, and ``eyeSquint`` fires in anger, disgust and sadness. A
small classifier fitted on labelled faces reads the same signals better. This module holds what labelling
needs at run time, with numpy only:

* :func:`frame_features`: the per-frame feature matrix of one item from its stored face arrays, by named
  groups (:data:`FEATURE_GROUPS`): the 52 blendshapes, the AU estimates of :mod:`data_prep.aus`, and
  landmark geometry normalised for position, size and in-plane rotation, and ``measures`` engineered from it
  (brow, lid, nose and mouth distances, heights and angles, left and right averaged); ``*_upper`` variants
  keep only the brows, eyes, cheeks and nose, which speech moves little; :func:`mirror_permutation` says how
  the features of a mirrored face follow from the face's own (mirror augmentation in fitting);
* :class:`FaceEmotionMapping`: standardisation + a softmax classifier (multinomial logistic regression or a
  small ReLU MLP), saved as JSON (no pickle) with its feature names, classes and training summary; a mapping
  that standardises by corpus reads a corpus's faces against the corpus's own statistics
  (:func:`corpus_statistics`), centred on its median frame when it was fitted on corpora centred on their
  neutral faces (the default since 2026-12-07: neutral talking is then read as neutral, not as fear);
* :func:`load_mapping`: a user's file, or the default fitted on posed photographs and shipped in
  ``data_prep/assets``.

Fitting lives in :mod:`data_prep.face_emotion_fit`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import aus, geometry
from .store import write_json_atomic

MAPPING_FORMAT = "avpretext-face-emotion/1"
DEFAULT_MAPPING_FILE = "face_emotion_default.json"
EMOTION_CLASSES = ("neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust")
# Emotion names of corpora and manifests -> the class names tasks use (the AU task's EMFACS names); the
# audit extends them with --alias.
EMOTION_ALIASES = {
    "angry": "anger", "anger": "anger", "mad": "anger", "furious": "anger",
    "happy": "happiness", "happiness": "happiness", "joy": "happiness", "joyful": "happiness",
    "sad": "sadness", "sadness": "sadness",
    "surprised": "surprise", "surprise": "surprise",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "disgust": "disgust", "disgusted": "disgust",
    "neutral": "neutral", "contempt": "contempt", "calm": "calm",
}

# Mesh points whose normalised (x, y) positions are the geometry features (subject's right = image left).
_GEOMETRY_UPPER = {
    "brow_r": (70, 63, 105, 66, 107), "brow_l": (336, 296, 334, 293, 300),
    "eye_r": (33, 160, 158, 133, 153, 144), "eye_l": (362, 385, 387, 263, 373, 380),
    "nose": (1, 98, 327), "cheek": (205, 425),
}
_GEOMETRY_LOWER = {"lips": (61, 291, 0, 17, 13, 14, 37, 267, 84, 314, 40, 270), "chin": (152,)}
# Blendshapes of the upper face (brows, eyes, cheeks, nose): the mouth and jaw ones move with speech.
_UPPER_BLENDSHAPE_PREFIXES = ("brow", "eye", "cheek", "nose")
# AU estimates of the upper face (AU1-AU9).
_UPPER_AUS = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09")


def _geometry_names(groups: dict[str, tuple[int, ...]]) -> list[str]:
    return [f"geo_{name}{i}_{axis}" for name, points in groups.items() for i in points for axis in "xy"]


def _blendshape_names(upper: bool) -> list[str]:
    names = [n for n in aus.BLENDSHAPE_NAMES if n != "_neutral"]
    return [f"bs_{n}" for n in names if not upper or n.startswith(_UPPER_BLENDSHAPE_PREFIXES)]


_GEOMETRY_POINTS = {"geometry": [i for points in {**_GEOMETRY_UPPER, **_GEOMETRY_LOWER}.values() for i in points],
                    "geometry_upper": [i for points in _GEOMETRY_UPPER.values() for i in points]}
# Mirror partners of the geometry points (the mesh's left/right pairs); unlisted points are on the midline.
_MIRROR_POINTS = dict(zip(_GEOMETRY_UPPER["brow_r"] + _GEOMETRY_UPPER["eye_r"] + (98, 205, 61, 37, 84, 40),
                          (300, 293, 334, 296, 336) + (263, 387, 385, 362, 380, 373) + (327, 425, 291, 267, 314, 270)))
_MIRROR_POINTS.update({b: a for a, b in list(_MIRROR_POINTS.items())})

# Engineered geometry ("measures"): distances, heights and angles between brow, lid, nose and mouth points on
# the eye-aligned mesh (normalised_geometry: inter-ocular units, y downwards). Each per-side measure is the
# mean of the face's two sides, so a mirrored face (or one turned a little) reads the same; a few absolute
# left/right differences keep one-sided expressions. Points: subject's right side / left side.
_SIDE_POINTS = {
    "right": dict(eye_out=33, eye_in=133, lid_up=159, lid_lo=145, brow_in=107, brow_mid=105, brow_out=70,
                  brow_in_lo=55, corner=61, nostril=98, cheek=205, lip_up=37, lip_lo=84, jaw=172),
    "left": dict(eye_out=263, eye_in=362, lid_up=386, lid_lo=374, brow_in=336, brow_mid=334, brow_out=300,
                 brow_in_lo=285, corner=291, nostril=327, cheek=425, lip_up=267, lip_lo=314, jaw=397),
}
_LIP_TOP, _LIP_IN_TOP, _LIP_IN_BOT, _LIP_BOT, _NOSE_TIP, _SUBNASALE, _CHIN, _GLABELLA = 0, 13, 14, 17, 1, 2, 152, 9
_SIDE_MEASURES = ("brow_in_raise", "brow_mid_raise", "brow_out_raise", "brow_slope", "brow_thick_in", "eye_open",
                  "lid_up_h", "lid_lo_h", "corner_y", "corner_rel", "corner_eye", "corner_nostril", "cheek_y",
                  "cheek_eye", "nostril_y", "lip_up_y", "lip_lo_y", "jaw_w")
_CENTRE_MEASURES = ("brow_gap", "brow_glabella", "nose_w", "nose_tip_y", "nose_lip", "mouth_w", "mouth_open_in",
                    "mouth_open_out", "mouth_aspect", "lip_top_y", "lip_bot_chin", "chin_y", "upper_lip_thick",
                    "lower_lip_thick", "corner_angle")
_ASYMMETRY_MEASURES = ("brow_in_raise", "brow_out_raise", "eye_open", "corner_y", "corner_rel", "cheek_y",
                       "nostril_y")
FEATURE_GROUPS: dict[str, list[str]] = {
    "blendshapes": _blendshape_names(upper=False),
    "blendshapes_upper": _blendshape_names(upper=True),
    "aus": [f"au_{a}" for a in aus.AU_NAMES],
    "aus_upper": [f"au_{a}" for a in _UPPER_AUS],
    "geometry": _geometry_names({**_GEOMETRY_UPPER, **_GEOMETRY_LOWER}),
    "geometry_upper": _geometry_names(_GEOMETRY_UPPER),
    "measures": ([f"measure_{m}" for m in _SIDE_MEASURES + _CENTRE_MEASURES]
                 + [f"measure_asym_{m}" for m in _ASYMMETRY_MEASURES]),
}


class MappingError(ValueError):
    """A mapping file that cannot be read or does not fit the features it is applied to."""


def feature_names(groups: list[str]) -> list[str]:
    """The feature columns of ``groups`` in order (unknown group names are an error)."""
    unknown = [g for g in groups if g not in FEATURE_GROUPS]
    if unknown:
        raise MappingError(f"unknown feature groups {unknown}; known: {sorted(FEATURE_GROUPS)}")
    return [name for g in groups for name in FEATURE_GROUPS[g]]


def normalised_geometry(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Mesh positions with the eye centres' midpoint at the origin, the eye line along x and the inter-ocular
    distance as unit: ``(T, 478, 3)`` normalised landmarks -> ``(T, 478, 2)``. NaN rows stay NaN."""
    points = geometry.to_isotropic(np.asarray(landmarks, dtype=np.float32), width, height)[..., :2]
    right = (points[:, geometry.RIGHT_EYE_OUTER] + points[:, geometry.RIGHT_EYE_INNER]) / 2
    left = (points[:, geometry.LEFT_EYE_OUTER] + points[:, geometry.LEFT_EYE_INNER]) / 2
    axis = left - right
    iod = np.linalg.norm(axis, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos, sin = (axis / iod)[:, 0], (axis / iod)[:, 1]
        centred = points - ((left + right) / 2)[:, None, :]
        x = centred[..., 0] * cos[:, None] + centred[..., 1] * sin[:, None]
        y = -centred[..., 0] * sin[:, None] + centred[..., 1] * cos[:, None]
        return np.stack([x, y], axis=-1) / iod[:, None, :]


def _side_measures(p: np.ndarray, side: dict[str, int]) -> dict[str, np.ndarray]:
    """Per-side measures of eye-aligned points ``(T, 478, 2)``, each ``(T,)``."""
    q = {name: p[:, i] for name, i in side.items()}
    eye_width = np.linalg.norm(q["eye_out"] - q["eye_in"], axis=-1)
    eye_y = (q["eye_out"][:, 1] + q["eye_in"][:, 1]) / 2
    return {
        "brow_in_raise": q["eye_in"][:, 1] - q["brow_in"][:, 1],
        "brow_mid_raise": q["lid_up"][:, 1] - q["brow_mid"][:, 1],
        "brow_out_raise": q["eye_out"][:, 1] - q["brow_out"][:, 1],
        "brow_slope": q["brow_out"][:, 1] - q["brow_in"][:, 1],  # sad brows: the inner end up
        "brow_thick_in": q["brow_in_lo"][:, 1] - q["brow_in"][:, 1],
        "eye_open": np.linalg.norm(q["lid_up"] - q["lid_lo"], axis=-1) / eye_width,
        "lid_up_h": eye_y - q["lid_up"][:, 1],
        "lid_lo_h": q["lid_lo"][:, 1] - eye_y,  # AU7 raises the lower lid
        "corner_y": q["corner"][:, 1],
        "corner_rel": q["corner"][:, 1] - (p[:, _LIP_TOP, 1] + p[:, _LIP_BOT, 1]) / 2,  # smile < 0 < frown
        "corner_eye": np.linalg.norm(q["corner"] - q["eye_out"], axis=-1),
        "corner_nostril": np.linalg.norm(q["corner"] - q["nostril"], axis=-1),
        "cheek_y": q["cheek"][:, 1],
        "cheek_eye": q["cheek"][:, 1] - q["lid_lo"][:, 1],
        "nostril_y": q["nostril"][:, 1],
        "lip_up_y": q["lip_up"][:, 1] - p[:, _SUBNASALE, 1],
        "lip_lo_y": q["lip_lo"][:, 1] - p[:, _LIP_IN_BOT, 1],
        "jaw_w": np.abs(q["jaw"][:, 0]),
    }


def geometry_measures(points: np.ndarray) -> np.ndarray:
    """Engineered geometry of eye-aligned points (:func:`normalised_geometry`): ``(T, 478, 2) -> (T, M)`` in
    ``FEATURE_GROUPS["measures"]`` order; NaN rows stay NaN."""
    p = np.asarray(points, dtype=np.float64)
    right, left = (_side_measures(p, _SIDE_POINTS[s]) for s in ("right", "left"))
    mouth_w = np.linalg.norm(p[:, _SIDE_POINTS["right"]["corner"]] - p[:, _SIDE_POINTS["left"]["corner"]], axis=-1)
    open_in = np.linalg.norm(p[:, _LIP_IN_TOP] - p[:, _LIP_IN_BOT], axis=-1)
    brows_in = (p[:, _SIDE_POINTS["right"]["brow_in"]], p[:, _SIDE_POINTS["left"]["brow_in"]])
    corners_y = (p[:, _SIDE_POINTS["right"]["corner"], 1] + p[:, _SIDE_POINTS["left"]["corner"], 1]) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = {
            "brow_gap": np.linalg.norm(brows_in[0] - brows_in[1], axis=-1),
            "brow_glabella": p[:, _GLABELLA, 1] - (brows_in[0][:, 1] + brows_in[1][:, 1]) / 2,
            "nose_w": np.linalg.norm(p[:, _SIDE_POINTS["right"]["nostril"]] - p[:, _SIDE_POINTS["left"]["nostril"]],
                                     axis=-1),
            "nose_tip_y": p[:, _NOSE_TIP, 1],
            "nose_lip": p[:, _LIP_TOP, 1] - p[:, _SUBNASALE, 1],  # AU10 shortens it
            "mouth_w": mouth_w,
            "mouth_open_in": open_in,
            "mouth_open_out": np.linalg.norm(p[:, _LIP_TOP] - p[:, _LIP_BOT], axis=-1),
            "mouth_aspect": open_in / mouth_w,
            "lip_top_y": p[:, _LIP_TOP, 1],
            "lip_bot_chin": p[:, _CHIN, 1] - p[:, _LIP_BOT, 1],  # AU17 shortens it
            "chin_y": p[:, _CHIN, 1],
            "upper_lip_thick": p[:, _LIP_IN_TOP, 1] - p[:, _LIP_TOP, 1],
            "lower_lip_thick": p[:, _LIP_BOT, 1] - p[:, _LIP_IN_BOT, 1],
            "corner_angle": np.arctan2(corners_y - p[:, _LIP_IN_TOP, 1], mouth_w / 2),
        }
        columns = ([(right[m] + left[m]) / 2 for m in _SIDE_MEASURES] + [centre[m] for m in _CENTRE_MEASURES]
                   + [np.abs(right[m] - left[m]) for m in _ASYMMETRY_MEASURES])
    return np.stack(columns, axis=1).astype(np.float32)


def mirror_permutation(features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """How the features of a mirrored face follow from the face's own: ``mirrored = X[:, perm] * sign``.

    Left/right blendshapes swap, geometry points swap with their mirror partner and their x flips sign; the
    AU estimates (means of both sides) and the measures (side means and absolute differences) stay.

    Raises:
        MappingError: a feature whose mirror partner is not among ``features``.
    """
    index = {name: i for i, name in enumerate(features)}

    def point_axis(name: str) -> tuple[int, str]:  # "geo_brow_r70_x" -> (70, "x")
        head, axis = name.rsplit("_", 1)
        return int(head[len(head.rstrip("0123456789")):]), axis

    geometry_by_point = {point_axis(n): n for n in features if n.startswith("geo_")}
    perm, sign = [], []
    for name in features:
        partner, flip = name, 1.0
        if name.startswith("bs_"):
            for a, b in (("Left", "Right"), ("Right", "Left")):
                if name.endswith(a):
                    partner = name[: -len(a)] + b
                    break
        elif name.startswith("geo_"):
            point, axis = point_axis(name)
            partner = geometry_by_point.get((_MIRROR_POINTS.get(point, point), axis))
            flip = -1.0 if axis == "x" else 1.0
        if partner not in index:
            raise MappingError(f"feature {name!r} has no mirror partner among the features")
        perm.append(index[partner])
        sign.append(flip)
    return np.asarray(perm), np.asarray(sign)


def frame_features(face, frame_size: tuple[int, int], au_names: list[str], groups: list[str]) -> np.ndarray:
    """Per-frame features of one item: ``(T, F)`` float32 in :func:`feature_names` order, NaN rows where no
    face was found.

    Args:
        face: the item's stored face arrays (``blendshapes`` (T, 52), ``aus`` (T, K), ``landmarks`` (T, 478, 3)).
        frame_size: (width, height) of the analysed frames (landmarks are normalised to them).
        au_names: the names of the ``aus`` columns (the item's ``meta["au_names"]``).
        groups: feature groups (:data:`FEATURE_GROUPS`).
    """
    parts = []
    blend = mesh_2d = None
    for group in groups:
        names = FEATURE_GROUPS[group]
        if group.startswith("blendshapes"):
            blend = np.asarray(face["blendshapes"], dtype=np.float32) if blend is None else blend
            index = {n: i for i, n in enumerate(aus.BLENDSHAPE_NAMES)}
            parts.append(blend[:, [index[n[3:]] for n in names]])
        elif group.startswith("aus"):
            index = {n: i for i, n in enumerate(au_names)}
            missing = [n[3:] for n in names if n[3:] not in index]
            if missing:
                raise MappingError(f"the stored AU estimates lack {missing} that feature group {group!r} uses")
            parts.append(np.asarray(face["aus"], dtype=np.float32)[:, [index[n[3:]] for n in names]])
        else:
            if mesh_2d is None:
                mesh_2d = normalised_geometry(np.asarray(face["landmarks"]), *frame_size)
            if group == "measures":
                parts.append(geometry_measures(mesh_2d))
            else:
                mesh = mesh_2d[:, _GEOMETRY_POINTS[group]]
                parts.append(mesh.reshape(len(mesh), -1))
    return np.concatenate(parts, axis=1).astype(np.float32)


@dataclass
class FaceEmotionMapping:
    """Standardisation and a softmax classifier over named features.

    ``layers`` are ``(weight (out, in), bias (out,))`` pairs applied in turn to the standardised features,
    ReLU between them; the last layer's outputs are the class logits (one layer: multinomial logistic
    regression).
    """

    classes: list[str]
    feature_groups: list[str]
    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]
    summary: dict = field(default_factory=dict)
    source: str = ""
    # "corpus": features are first standardised with the statistics of the corpus being labelled
    # (:func:`corpus_statistics`), as each training corpus was, which removes what a camera, a corpus or
    # talking shifts in every face (docs/label_audit.md); ``fallback_mean``/``fallback_scale`` (raw training
    # statistics) stand in when a corpus is too small to have its own. "training": only ``mean``/``scale``.
    standardise: str = "training"
    fallback_mean: np.ndarray | None = None
    fallback_scale: np.ndarray | None = None
    # corpus standardisation: the corpus's centre at labelling time. "median": its median frame, for a mapping
    # fitted with each training corpus centred on its NEUTRAL faces; in a corpus of mostly relaxed faces (read
    # or broadcast speech) the median frame is a relaxed face, so talking is read against a neutral face, not
    # against the mean of posed emotions (which read neutral talking as fear: docs/label_audit.md, "Neutral
    # talking faces"). "mean": the corpus mean (mappings fitted with mean-centred corpora, before 2026-12-07).
    corpus_reference: str = "mean"

    def __post_init__(self):
        expected = feature_names(self.feature_groups)
        if list(self.features) != expected:
            raise MappingError(f"{self._where()}: its feature list does not match the feature groups "
                               f"{self.feature_groups} of this version ({len(self.features)} features vs "
                               f"{len(expected)} expected; first difference: "
                               f"{_first_difference(self.features, expected)}); refit it with fit-face-emotion")
        width = len(self.features)
        if self.mean.shape != (width,) or self.scale.shape != (width,) or not np.all(self.scale > 0):
            raise MappingError(f"{self._where()}: standardisation does not have {width} positive entries")
        for k, (weight, bias) in enumerate(self.layers):
            if weight.ndim != 2 or weight.shape[1] != width or bias.shape != (weight.shape[0],):
                raise MappingError(f"{self._where()}: layer {k} has shape {weight.shape} / {bias.shape}, expected "
                                   f"(n, {width}) / (n,)")
            width = weight.shape[0]
        if width != len(self.classes):
            raise MappingError(f"{self._where()}: the last layer gives {width} outputs for {len(self.classes)} classes")
        if self.standardise not in ("training", "corpus"):
            raise MappingError(f"{self._where()}: standardise {self.standardise!r} is not training or corpus")
        if self.standardise == "corpus" and (self.fallback_mean is None or self.fallback_mean.shape != (len(
                self.features),) or self.fallback_scale is None or self.fallback_scale.shape != (len(self.features),)):
            raise MappingError(f"{self._where()}: corpus standardisation needs fallback statistics of "
                               f"{len(self.features)} features")
        if self.corpus_reference not in CORPUS_REFERENCES:
            raise MappingError(f"{self._where()}: corpus reference {self.corpus_reference!r} is not one of "
                               f"{', '.join(CORPUS_REFERENCES)}")
        if self.classes[0] != "neutral":
            raise MappingError(f"{self._where()}: the first class must be 'neutral' (got {self.classes[0]!r})")

    def _where(self) -> str:
        return f"face-emotion mapping {self.source}" if self.source else "face-emotion mapping"

    def predict_proba(self, features: np.ndarray, corpus: "CorpusStatistics | None" = None) -> np.ndarray:
        """Class probabilities ``(T, F) -> (T, C)``; NaN rows (no face) give NaN rows.

        ``corpus``: the statistics of the corpus the frames come from (:func:`corpus_statistics`), used when
        the mapping standardises by corpus (else its fallback statistics are); the mapping's
        ``corpus_reference`` says which centre (mean or median) it takes. A plain ``(centre, scale)`` pair is
        taken as it is."""
        x = np.asarray(features, dtype=np.float64)
        if self.standardise == "corpus":
            if corpus is None:
                centre, scale = self.fallback_mean, self.fallback_scale
            elif isinstance(corpus, CorpusStatistics):
                centre = corpus.median if self.corpus_reference == "median" else corpus.mean
                scale = corpus.scale
            else:
                centre, scale = corpus
            x = (x - centre) / scale
        x = (x - self.mean) / self.scale
        valid = np.isfinite(x).all(1)
        h = np.nan_to_num(x)
        for k, (weight, bias) in enumerate(self.layers):
            h = h @ weight.T + bias
            if k < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        h -= h.max(1, keepdims=True)
        p = np.exp(h)
        p /= p.sum(1, keepdims=True)
        p[~valid] = np.nan
        return p

    def media_features(self, media) -> np.ndarray:
        """``(T, F)`` features of an extracted item (:class:`data_prep.signals.MediaSignals`)."""
        return frame_features(media.face, media.frame_size, list(media.meta["au_names"]), self.feature_groups)

    def media_probabilities(self, media, corpus: "CorpusStatistics | None" = None) -> np.ndarray:
        """``(T, C)`` per-frame probabilities of an extracted item."""
        return self.predict_proba(self.media_features(media), corpus)

    def to_dict(self) -> dict:
        return {"format": MAPPING_FORMAT, "classes": list(self.classes), "feature_groups": list(self.feature_groups),
                "features": list(self.features),
                "standardisation": {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                                    "by": self.standardise,
                                    **({"reference": self.corpus_reference,
                                        "reference_means": CORPUS_REFERENCES[self.corpus_reference],
                                        "fallback_mean": self.fallback_mean.tolist(),
                                        "fallback_scale": self.fallback_scale.tolist()}
                                       if self.standardise == "corpus" else {})},
                "layers": [{"weight": w.tolist(), "bias": b.tolist()} for w, b in self.layers],
                "summary": self.summary}

    def save(self, path: str | Path) -> Path:
        write_json_atomic(Path(path), self.to_dict())
        return Path(path)

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> "FaceEmotionMapping":
        where = f"face-emotion mapping {source}" if source else "face-emotion mapping"
        if not isinstance(data, dict) or data.get("format") != MAPPING_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise MappingError(f"{where}: not a face-emotion mapping (format {found!r}, expected {MAPPING_FORMAT!r})")
        try:
            return cls(classes=list(data["classes"]), feature_groups=list(data["feature_groups"]),
                       features=list(data["features"]),
                       mean=np.asarray(data["standardisation"]["mean"], dtype=np.float64),
                       scale=np.asarray(data["standardisation"]["scale"], dtype=np.float64),
                       layers=[(np.asarray(layer["weight"], dtype=np.float64),
                                np.asarray(layer["bias"], dtype=np.float64)) for layer in data["layers"]],
                       summary=dict(data.get("summary", {})), source=source,
                       standardise=data["standardisation"].get("by", "training"),
                       fallback_mean=_optional_array(data["standardisation"].get("fallback_mean")),
                       fallback_scale=_optional_array(data["standardisation"].get("fallback_scale")),
                       corpus_reference=data["standardisation"].get("reference", "mean"))
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, MappingError):
                raise
            raise MappingError(f"{where}: malformed ({type(err).__name__}: {err})") from err


def default_mapping_path() -> Path:
    """The mapping fitted on posed photographs and shipped with the package (data_prep/assets/README.md)."""
    return Path(__file__).resolve().parent / "assets" / DEFAULT_MAPPING_FILE


def load_mapping(path: str | Path | None = None) -> FaceEmotionMapping:
    """A mapping from a JSON file (default: the shipped one).

    Raises:
        MappingError: missing, unreadable, not a mapping, or inconsistent with this version's features.
    """
    path = Path(path) if path else default_mapping_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"face-emotion mapping {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MappingError(f"face-emotion mapping {path}: cannot read it as JSON ({err})") from err
    return FaceEmotionMapping.from_dict(data, source=str(path))


# A corpus needs this many items with a face, and frames, to standardise by its own statistics.
MIN_CORPUS_ITEMS = 5
MIN_CORPUS_FRAMES = 50
# Frames per item that enter the corpus statistics (evenly spaced): a long clip must not outweigh the others.
CORPUS_FRAMES_PER_ITEM = 300


class CorpusStatistics(NamedTuple):
    """Per-feature statistics ``(F,)`` of a corpus's face frames: mean, standard deviation (``scale``) and
    median (the centre of a mapping with ``corpus_reference = "median"``)."""

    mean: np.ndarray
    scale: np.ndarray
    median: np.ndarray


# What a mapping's corpus reference means (written into the mapping file, so it describes itself).
CORPUS_REFERENCES = {
    "mean": "a corpus is centred on its mean face frame at labelling time (training corpora on their mean)",
    "median": "a corpus is centred on its median face frame at labelling time (training corpora on the mean of "
              "their neutral faces): in a corpus of mostly relaxed faces the median frame is a relaxed face",
}


def corpus_statistics(feature_arrays: list[np.ndarray]) -> CorpusStatistics | None:
    """:class:`CorpusStatistics` ``(F,)`` of the face frames of a corpus's items (``[(T_i, F)]``, NaN rows
    ignored), or None when the corpus is too small (:data:`MIN_CORPUS_ITEMS`, :data:`MIN_CORPUS_FRAMES`) to
    stand for faces in general: standardising a clip by itself would remove the expression it holds
    throughout."""
    frames = []
    for x in feature_arrays:
        x = x[np.isfinite(x).all(1)]
        if len(x):
            frames.append(x[np.linspace(0, len(x) - 1, min(len(x), CORPUS_FRAMES_PER_ITEM)).round().astype(int)])
    if len(frames) < MIN_CORPUS_ITEMS or sum(map(len, frames)) < MIN_CORPUS_FRAMES:
        return None
    pooled = np.concatenate(frames).astype(np.float64)
    return CorpusStatistics(pooled.mean(0), np.maximum(pooled.std(0), 1e-6), np.median(pooled, axis=0))


def _optional_array(values) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=np.float64)


def _first_difference(a: list[str], b: list[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"position {i}: {x!r} vs {y!r}"
    return f"lengths {len(a)} vs {len(b)}"
