"""A talking face without a camera: the astronaut photograph's head, its jaw, head and expression warped.

The face is the head of scikit-image's ``astronaut`` photograph (public domain, NASA), shipped in
``data_prep/assets`` so that neither the demo nor the tests need scikit-image; mediapipe detects it. It is
animated by warping the lower face (jaw opening), optionally moving the whole head, and posing facial
expressions (smooth displacement fields around the brows, eyes, cheeks and lips; see :func:`expression_frame`).
"""
from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

FACE_CROP = (slice(10, 250), slice(105, 345))  # rows, cols of the astronaut's head in the 512x512 photo
_NOSE_Y, _CHIN_Y, _FACE_X = 121.0, 167.0, 118.0  # in crop coordinates


FACE_IMAGE_FILE = Path(__file__).resolve().parents[2] / "data_prep" / "assets" / "astronaut_face.npz"
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
    return cv2.remap(face, map_x.astype(np.float32), map_y.astype(np.float32), interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


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
