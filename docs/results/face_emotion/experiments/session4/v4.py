"""Session 4 (issue 25): mappings that read neutral talking faces as neutral. Shared code of the variants.

Sets (cache4.py): photos (1,305 posed photographs), dev (31 clips), talk (28 plain talking clips of
talking_faces: GRID-lipnet 12, LRS2 10, video-retalking 5, HDTF 2), pool (the 6.1 h pool's items with a face,
segments as labelled). A variant = (centring, extra neutral talking training sets, weight, neutral bias)."""
import sys, pickle, warnings, numpy as np
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[5]))  # the repository
from data_prep.face_emotion import (EMOTION_ALIASES, EMOTION_CLASSES, feature_names, mirror_permutation,
                                    CORPUS_FRAMES_PER_ITEM)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler
warnings.simplefilter('ignore')
D = __import__('os').environ.get('RUN', '/work/runs/face25b') + '/'  # work folder (caches, results)
G = ["blendshapes", "aus", "geometry", "measures"]
NAMES = feature_names(G)
PERM, SIGN = mirror_permutation(NAMES)
load = lambda n: pickle.load(open(D + n, 'rb'))

def label(e):
    e = EMOTION_ALIASES.get(str(e).strip().lower(), str(e).strip().lower())
    return EMOTION_CLASSES.index(e) if e in EMOTION_CLASSES else -1

def finite(x):
    return x[np.isfinite(x).all(1)]

def even(x, k):
    return x[np.linspace(0, len(x) - 1, min(len(x), k)).round().astype(int)] if len(x) else x

# ---- corpus reference (centre, scale) -------------------------------------------------------------
def corpus_ref(arrays, centre='mean'):
    """(centre, scale) of a corpus's face frames (<= 300 per item, as corpus_statistics): centre = mean or
    per-feature median of the pooled frames; scale = the pooled standard deviation."""
    fr = [even(finite(x), CORPUS_FRAMES_PER_ITEM) for x in arrays]
    p = np.concatenate([f for f in fr if len(f)]).astype(np.float64)
    c = p.mean(0) if centre == 'mean' else np.median(p, 0)
    return c, np.maximum(p.std(0), 1e-6)

# ---- photographs ------------------------------------------------------------------------------------
def photos_xy(items):
    X, y, g, c = [], [], [], []
    for it in items:
        f = finite(it['X'])
        if len(f):
            X.append(f[0]); y.append(label(it['row']['emotion'])); g.append(it['row']['identity']); c.append(it['row']['corpus'])
    return np.array(X, float), np.array(y), np.array(g), np.array(c)

def photos_std(X, y, c, centre, g=None):
    """Each photo corpus standardised by its own spread, centred on its mean ('mean', shipped) or on the mean
    of its neutral photographs ('neutral')."""
    out = np.empty_like(X)
    for k in set(c):
        r = c == k
        ctr = X[r].mean(0) if centre == 'mean' or not (r & (y == 0)).any() else X[r & (y == 0)].mean(0)
        out[r] = (X[r] - ctr) / np.maximum(X[r].std(0), 1e-6)
        if centre == 'neutral-id':  # each identity on its own neutral photographs where it has some
            for i in set(g[r]):
                ri = r & (g == i)
                if (ri & (y == 0)).any():
                    out[ri] = (X[ri] - X[ri & (y == 0)].mean(0)) / np.maximum(X[r].std(0), 1e-6)
    return out

def talk_frames(arrays, centre, per_item):
    """Training frames of a neutral talking corpus: standardised by its own reference, per_item frames each."""
    ctr, sc = corpus_ref(arrays, 'mean' if centre == 'mean' else 'median')
    return np.concatenate([even(finite(x), per_item) for x in arrays if len(finite(x))]) - ctr, sc

def fit(Xp, yp, extra=None, w_extra=1.0, C=0.01):
    """LR (balanced over the photographs' classes) on photographs + mirrors; ``extra`` neutral frames enter
    with a total weight of w_extra x the photographs' neutral class."""
    Xa, ya = np.vstack([Xp, Xp[:, PERM] * SIGN]), np.concatenate([yp, yp])
    cnt = np.bincount(ya, minlength=7); sw = (len(ya) / (7 * cnt))[ya]
    if extra is not None and len(extra):
        E = np.vstack([extra, extra[:, PERM] * SIGN])
        tot = sw[ya == 0].sum() * w_extra
        Xa = np.vstack([Xa, E]); ya = np.concatenate([ya, np.zeros(len(E), int)])
        sw = np.concatenate([sw, np.full(len(E), tot / len(E))])
    sc = StandardScaler().fit(Xa)
    m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(Xa), ya, sample_weight=sw)
    return lambda X: _proba(m, sc, X)

def _proba(m, sc, X):
    out = np.zeros((len(X), 7)); out[:, m.classes_] = m.predict_proba(sc.transform(X)); return out

def biased(P, b):
    """Neutral's probability x b (b > 1: a higher neutral prior), renormalised."""
    if b == 1: return P
    Q = P.copy(); Q[:, 0] *= b; return Q / Q.sum(1, keepdims=True)

def loio(Xs, y, g, extra, w, C=0.01, n=5):
    P = np.zeros((len(y), 7))
    for tr, te in GroupKFold(n).split(Xs, y, g):
        P[te] = fit(Xs[tr], y[tr], extra, w, C)(Xs[te])
    return P

def photo_scores(y, P):
    p = P.argmax(1); e = y > 0
    rec = [(p[y == k] == k).mean() for k in range(7)]
    return dict(acc7=(p == y).mean(), acc6=(p[e] == y[e]).mean(), uar7=np.mean(rec), rec=rec)

# ---- labelling a corpus (frame votes >= 0.35 or mean probability) --------------------------------
def votes(P, min_fraction=0.35):
    if not len(P): return -1
    fr = np.bincount(P.argmax(1), minlength=7) / len(P)
    b = fr[1:].argmax() + 1
    return b if fr[b] >= min_fraction else 0

def label_clips(model, arrays, centre, bias=1.0):
    """Whole-item labels of a corpus (each array one item), standardised by the corpus reference."""
    ctr, sc = corpus_ref(arrays, centre)
    return [votes(biased(model((finite(x) - ctr) / sc), bias)) if len(finite(x)) else -1 for x in arrays]

def dev_score(model, dev, centre, bias=1.0):
    lab = label_clips(model, [it['X'] for it in dev], centre, bias)
    t = [label(it['row']['emotion']) for it in dev]
    return sum(1 for a, b in zip(t, lab) if a > 0 and a == b), sum(1 for a in t if a > 0), lab

def pool_shares(model, pool, centre, bias=1.0):
    """Share of neutral among the pool's face segments: all, GRID s1, LRW-AR (pool labelled as one corpus)."""
    ctr, sc = corpus_ref([it['X'] for it in pool], centre)
    res = {'all': [], 'grid': [], 'lrw': []}
    for it in pool:
        P = None
        for s in it['segs']:
            if not s['au_mask']: continue
            if P is None: P = biased(model((np.nan_to_num(it['X']) - ctr) / sc), bias)
            lab = votes(P[s['sel']]) if len(s['sel']) else 0
            res['all'].append(lab)
            if 'grid_s1' in it['source']: res['grid'].append(lab)
            if 'lrw_ar' in it['source']: res['lrw'].append(lab)
    return {k: (np.mean(np.array(v) == 0), len(v), np.bincount(np.array(v), minlength=7) / len(v)) for k, v in res.items()}
