"""Shared helpers of the measurement scripts of docs/results/face_emotion (not part of the package): LOIO on the photographs, frame votes on the dev clips."""
import sys, pickle, warnings, numpy as np
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[4]))  # the repository
from data_prep.face_emotion import FEATURE_GROUPS, _GEOMETRY_POINTS, EMOTION_ALIASES, EMOTION_CLASSES
from data_prep import aus as ausmod
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler
warnings.simplefilter('ignore')
D = __import__('os').environ.get('RUN', '.') + '/'  # work folder holding photos.pkl, dev.pkl, talk.pkl
BS_IDX = [i for i, n in enumerate(ausmod.BLENDSHAPE_NAMES) if n != '_neutral']
BS_NAMES = [n for n in ausmod.BLENDSHAPE_NAMES if n != '_neutral']
GEO = _GEOMETRY_POINTS['geometry']

def label(e):
    e = EMOTION_ALIASES.get(str(e).strip().lower(), str(e).strip().lower())
    return EMOTION_CLASSES.index(e) if e in EMOTION_CLASSES else -1

def base_feats(it, geo_pts=GEO):
    g = it['geo'][:, geo_pts].reshape(len(it['geo']), -1)
    return np.concatenate([it['blend'][:, BS_IDX], it['aus'], g], 1)

def load(name):
    return pickle.load(open(D + name, 'rb'))

def photos_xy(items, feat=base_feats):
    X, y, g, c = [], [], [], []
    for it in items:
        f = feat(it)
        if not np.isfinite(f).all():
            continue
        X.append(f[0]); y.append(label(it['row']['emotion'])); g.append(it['row']['identity']); c.append(it['row']['corpus'])
    return np.array(X, float), np.array(y), np.array(g), np.array(c)

def corpus_std(X, c):
    out = np.empty_like(X)
    for k in set(c):
        r = c == k
        out[r] = (X[r] - X[r].mean(0)) / np.maximum(X[r].std(0), 1e-6)
    return out

def stats_from_frames(frames_list, per_item=300):
    fr = []
    for x in frames_list:
        x = x[np.isfinite(x).all(1)]
        if len(x):
            fr.append(x[np.linspace(0, len(x) - 1, min(len(x), per_item)).round().astype(int)])
    p = np.concatenate(fr)
    return p.mean(0), np.maximum(p.std(0), 1e-6)

def make_lr(C=0.03, cw='balanced'):
    return LogisticRegression(C=C, max_iter=3000, class_weight=cw)

def scores(yt, yp):
    acc = (yt == yp).mean()
    rec = {EMOTION_CLASSES[k]: (yp[yt == k] == k).mean() for k in range(7) if (yt == k).any()}
    e = yt > 0
    return dict(acc7=acc, uar7=np.mean(list(rec.values())), acc6=(yt[e] == yp[e]).mean(),
                uar6=np.mean([rec[c] for c in EMOTION_CLASSES[1:]]), rec=rec)

def loio(X, y, g, fit_predict, n=5):
    P = np.zeros((len(y), 7))
    for tr, te in GroupKFold(n).split(X, y, g):
        P[te] = fit_predict(X[tr], y[tr], X[te], g[tr])
    return P

def lr_fp(C=0.03):
    def fp(Xtr, ytr, Xte, gtr=None):
        sc = StandardScaler().fit(Xtr); m = make_lr(C).fit(sc.transform(Xtr), ytr)
        out = np.zeros((len(Xte), 7)); out[:, m.classes_] = m.predict_proba(sc.transform(Xte)); return out
    return fp

def dev_eval(model_predict, dev_items, feat=base_feats, min_fraction=0.35, agg='votes', verbose=False, std_frames=None):
    feats = [feat(it) for it in dev_items]
    mean, scale = stats_from_frames(feats if std_frames is None else std_frames)
    right, rows = 0, []
    for it, f in zip(dev_items, feats):
        f = f[np.isfinite(f).all(1)]
        t = label(it['row']['emotion'])
        if len(f) == 0:
            pred = -1
        else:
            P = model_predict((f - mean) / scale)
            if agg == 'votes':
                cls = P.argmax(1); fr = np.bincount(cls, minlength=7) / len(cls)
                b = fr[1:].argmax() + 1; pred = b if fr[b] >= min_fraction else 0
            else:
                pm = P.mean(0); b = pm[1:].argmax() + 1; pred = b if pm[b] >= pm[0] else 0
        rows.append((it['path'].split('/')[-1], EMOTION_CLASSES[t] if t >= 0 else it['row']['emotion'], EMOTION_CLASSES[pred] if pred >= 0 else '-'))
        if t > 0 and pred == t: right += 1
    n6 = sum(1 for it in dev_items if label(it['row']['emotion']) > 0)
    if verbose:
        for r in rows: print('  %-40s %-10s %-10s %s' % (r + ('ok' if r[1] == r[2] else '',)))
    return right, n6, rows

# mirror permutation of base_feats columns
def _mirror_perm():
    def swap(n):
        for a, b in (('Left', 'Right'), ('Right', 'Left')):
            if n.endswith(a): return n[:-len(a)] + b
        if n == 'mouthLeft': return 'mouthRight'
        if n == 'mouthRight': return 'mouthLeft'
        if n == 'jawLeft': return 'jawRight'
        if n == 'jawRight': return 'jawLeft'
        return n
    bs = [BS_NAMES.index(swap(n)) for n in BS_NAMES]
    # fix mouthLeft handled by endswith 'Left' -> 'mouthRight' fine
    au = list(range(51, 68))
    pm = {70:300,63:293,105:334,66:296,107:336,33:263,160:387,158:385,133:362,153:380,144:373,98:327,205:425,61:291,37:267,84:314,40:270}
    pm.update({v: k for k, v in pm.items()})
    perm, sign = list(bs) + au, [1.0] * 68
    for i, p in enumerate(GEO):
        j = GEO.index(pm.get(p, p))
        perm += [68 + 2 * j, 68 + 2 * j + 1]; sign += [-1.0, 1.0]
    return np.array(perm), np.array(sign)
MPERM, MSIGN = _mirror_perm()
def mirror(X):
    return X[:, MPERM] * MSIGN
def sym(X):
    return (X + mirror(X)) / 2
