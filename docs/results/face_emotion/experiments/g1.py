"""Engineered face geometry (issue 25, session 3): distances, ratios and angles between brow, eye, nose and mouth
landmarks, in inter-ocular units on the eye-aligned mesh (normalised_geometry: eye midpoint at the origin, eye
line along x, y downwards), left and right averaged so a turned head or a mirrored face reads the same; plus
the left/right asymmetry of the brow, lid and mouth-corner measures (contempt, one-sided disgust).
Used by m1.py; `eng(geo)` maps (T, 478, 2) -> (T, len(ENG_NAMES))."""
import numpy as np

# subject's right side / left side (image left / right) mesh points
R = dict(eye_out=33, eye_in=133, lid_up=159, lid_lo=145, brow_in=107, brow_mid=105, brow_out=70,
         brow_in_lo=55, corner=61, nostril=98, cheek=205, lip_up=37, lip_lo=84, jaw=172)
L = dict(eye_out=263, eye_in=362, lid_up=386, lid_lo=374, brow_in=336, brow_mid=334, brow_out=300,
         brow_in_lo=285, corner=291, nostril=327, cheek=425, lip_up=267, lip_lo=314, jaw=397)
LIP_TOP, LIP_IN_TOP, LIP_IN_BOT, LIP_BOT, NOSE_TIP, SUBNASALE, CHIN, GLABELLA = 0, 13, 14, 17, 1, 2, 152, 9


def _d(a, b):
    return np.linalg.norm(a - b, axis=-1)


def _side(P, s):
    """Per-side measures (T,) each."""
    p = {k: P[:, i] for k, i in s.items()}
    eye_w = _d(p['eye_out'], p['eye_in'])
    eye_cy = (p['eye_out'][:, 1] + p['eye_in'][:, 1]) / 2
    return {
        'brow_in_raise': p['eye_in'][:, 1] - p['brow_in'][:, 1],
        'brow_mid_raise': p['lid_up'][:, 1] - p['brow_mid'][:, 1],
        'brow_out_raise': p['eye_out'][:, 1] - p['brow_out'][:, 1],
        'brow_slope': p['brow_out'][:, 1] - p['brow_in'][:, 1],          # sad brows: inner end up -> larger
        'brow_thick_in': p['brow_in_lo'][:, 1] - p['brow_in'][:, 1],
        'eye_open': _d(p['lid_up'], p['lid_lo']) / eye_w,
        'lid_up_h': eye_cy - p['lid_up'][:, 1],                           # upper lid above the corner line
        'lid_lo_h': p['lid_lo'][:, 1] - eye_cy,                           # lower lid below it (AU7 raises it)
        'corner_y': p['corner'][:, 1],                                    # mouth corner below the eye line
        'corner_rel': p['corner'][:, 1] - (P[:, LIP_TOP, 1] + P[:, LIP_BOT, 1]) / 2,  # smile < 0 < frown
        'corner_eye': _d(p['corner'], p['eye_out']),
        'corner_nostril': _d(p['corner'], p['nostril']),
        'cheek_y': p['cheek'][:, 1],
        'cheek_eye': p['cheek'][:, 1] - p['lid_lo'][:, 1],
        'nostril_y': p['nostril'][:, 1],
        'lip_up_y': p['lip_up'][:, 1] - P[:, SUBNASALE, 1],
        'lip_lo_y': p['lip_lo'][:, 1] - P[:, LIP_IN_BOT, 1],
        'jaw_w': np.abs(p['jaw'][:, 0]),
    }


def _centre(P):
    mouth_w = _d(P[:, R['corner']], P[:, L['corner']])
    open_in = _d(P[:, LIP_IN_TOP], P[:, LIP_IN_BOT])
    return {
        'brow_gap': _d(P[:, R['brow_in']], P[:, L['brow_in']]),
        'brow_glabella': P[:, GLABELLA, 1] - (P[:, R['brow_in'], 1] + P[:, L['brow_in'], 1]) / 2,
        'nose_w': _d(P[:, R['nostril']], P[:, L['nostril']]),
        'nose_tip_y': P[:, NOSE_TIP, 1],
        'nose_lip': P[:, LIP_TOP, 1] - P[:, SUBNASALE, 1],              # AU10 shortens it
        'mouth_w': mouth_w,
        'mouth_open_in': open_in,
        'mouth_open_out': _d(P[:, LIP_TOP], P[:, LIP_BOT]),
        'mouth_aspect': open_in / mouth_w,
        'lip_top_y': P[:, LIP_TOP, 1],
        'lip_bot_chin': P[:, CHIN, 1] - P[:, LIP_BOT, 1],               # AU17 shortens it
        'chin_y': P[:, CHIN, 1],
        'upper_lip_thick': P[:, LIP_IN_TOP, 1] - P[:, LIP_TOP, 1],
        'lower_lip_thick': P[:, LIP_BOT, 1] - P[:, LIP_IN_BOT, 1],
        'corner_angle': np.arctan2((P[:, R['corner'], 1] + P[:, L['corner'], 1]) / 2 - P[:, LIP_IN_TOP, 1],
                                   mouth_w / 2),
    }


_ASYM = ('brow_in_raise', 'brow_out_raise', 'eye_open', 'corner_y', 'corner_rel', 'cheek_y', 'nostril_y')
ENG_NAMES = ([f'eng_{k}' for k in _side(np.zeros((1, 478, 2)), R)] + [f'eng_{k}' for k in _centre(np.zeros((1, 478, 2)))]
             + [f'eng_asym_{k}' for k in _ASYM])
# measures speech moves (mouth and jaw opening)
ENG_OPENING = {'eng_mouth_open_in', 'eng_mouth_open_out', 'eng_mouth_aspect', 'eng_chin_y', 'eng_lip_bot_chin',
               'eng_lip_lo_y', 'eng_corner_angle', 'eng_corner_rel', 'eng_asym_corner_rel'}


def eng(geo):
    P = np.asarray(geo, np.float64)
    r, l, c = _side(P, R), _side(P, L), _centre(P)
    cols = [(r[k] + l[k]) / 2 for k in r] + [c[k] for k in c] + [np.abs(r[k] - l[k]) for k in _ASYM]
    with np.errstate(invalid='ignore'):
        return np.stack(cols, 1).astype(np.float32)
