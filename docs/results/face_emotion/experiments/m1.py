"""Issue 25, session 3: model families and engineered geometry, leave identities out on the photographs only.
RUN=... OMP_NUM_THREADS=1 nice -n 5 python m1.py [name ...]   (default: all candidates)
Writes $RUN/oof_<name>.npy (out-of-fold (N, 7) probabilities, the fit command's 5 GroupKFold folds) and prints
one table row per candidate; ensembles are averages of these matrices (e1.py)."""
import os, sys, time
from exp import *
from g1 import eng, ENG_NAMES, ENG_OPENING
from sklearn.svm import SVC
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neural_network import MLPClassifier

FEATS = {
    'base': base_feats,
    'base+eng': lambda it: np.concatenate([base_feats(it), eng(it['geo'])], 1),
    'eng': lambda it: eng(it['geo']),
    'bs+aus+eng': lambda it: np.concatenate([base_feats(it)[:, :68], eng(it['geo'])], 1),
}
# columns speech moves: jawOpen, mouthClose, AU25, AU26, the inner-lip and chin points, the opening measures
_OPEN_BS = [BS_NAMES.index(n) for n in ('jawOpen', 'mouthClose', 'mouthLowerDownLeft', 'mouthLowerDownRight')]
_OPEN_AU = [51 + i for i, a in enumerate(ausmod.AU_NAMES) if a in ('AU25', 'AU26')]
_OPEN_GEO = [68 + 2 * GEO.index(p) + k for p in (13, 14, 17, 152) for k in (0, 1)]
NB = 51 + 17 + 2 * len(GEO)  # base columns: blendshapes, AUs, (x, y) of the 40 geometry points
_OPEN_ENG = [NB + i for i, n in enumerate(ENG_NAMES) if n in ENG_OPENING]
def _drop(cols, width):
    keep = np.setdiff1d(np.arange(width), cols); return lambda X: X[:, keep]


def sk_fp(make, Xmap=None):
    def fp(Xtr, ytr, Xte, gtr=None):
        if Xmap is not None:
            Xtr, Xte = Xmap(Xtr), Xmap(Xte)
        sc = StandardScaler().fit(Xtr); m = make().fit(sc.transform(Xtr), ytr)
        out = np.zeros((len(Xte), 7)); out[:, m.classes_] = m.predict_proba(sc.transform(Xte)); return out
    return fp


def mlp_fp(hidden, alpha, seeds=(0, 1, 2), Xmap=None):
    def fp(Xtr, ytr, Xte, gtr=None):
        if Xmap is not None:
            Xtr, Xte = Xmap(Xtr), Xmap(Xte)
        sc = StandardScaler().fit(Xtr); out = np.zeros((len(Xte), 7))
        # MLPClassifier has no class weights: repeat each class's rows up to the largest class (neutral x ~3)
        counts = np.bincount(ytr, minlength=7)
        rep = np.concatenate([np.repeat(np.flatnonzero(ytr == k), max(1, round(counts.max() / counts[k])))
                              for k in range(7) if counts[k]])
        Xtr, ytr = Xtr[rep], ytr[rep]
        for s in seeds:
            m = MLPClassifier((hidden,), alpha=alpha, early_stopping=True, validation_fraction=0.15,
                              n_iter_no_change=20, max_iter=500, random_state=s).fit(sc.transform(Xtr), ytr)
            out[:, m.classes_] += m.predict_proba(sc.transform(Xte)) / len(seeds)
        return out
    return fp


def mirror_fp(C, tta=True, Xmap=None, cw='balanced'):
    """LR fitted on each photograph and its mirror image (exp.mirror on the base columns; the engineered
    columns are left/right averages or absolute asymmetries, so a mirror leaves them unchanged); with tta the
    prediction is the mean over the face and its mirror."""
    def mir(X):
        return np.concatenate([mirror(X[:, :NB]), X[:, NB:]], 1)
    def fp(Xtr, ytr, Xte, gtr=None):
        Xa = np.vstack([Xtr, mir(Xtr)]); ya = np.concatenate([ytr, ytr])
        if Xmap is not None:  # columns dropped after mirroring (the mirror needs the full base layout)
            Xa, Xte = Xmap(Xa), Xmap(Xte)
        sc = StandardScaler().fit(Xa); m = make_lr(C, cw).fit(sc.transform(Xa), ya)
        P = m.predict_proba(sc.transform(Xte))
        if tta and Xmap is None:
            P = (P + m.predict_proba(sc.transform(mir(Xte)))) / 2
        out = np.zeros((len(Xte), 7)); out[:, m.classes_] = P; return out
    return fp


HGB = lambda **kw: (lambda: HistGradientBoostingClassifier(class_weight='balanced', random_state=0, **kw))
SVM = lambda C, gamma='scale': (lambda: SVC(C=C, gamma=gamma, kernel='rbf', probability=True, class_weight='balanced', random_state=0))
LR = lambda C, cw='balanced': (lambda: make_lr(C, cw))

CANDIDATES = {  # name: (feature set, fit_predict)
    'lr_base_C0.03': ('base', sk_fp(LR(0.03))),
    'lr_base_C0.03_unbalanced': ('base', sk_fp(LR(0.03, None))),
    'lr_base_noopen': ('base', sk_fp(LR(0.03), _drop(_OPEN_BS + _OPEN_AU + _OPEN_GEO, NB))),
    'lr_eng_C0.1': ('eng', sk_fp(LR(0.1))),
    'lr_eng_C1': ('eng', sk_fp(LR(1.0))),
    'lr_base+eng_C0.01': ('base+eng', sk_fp(LR(0.01))),
    'lr_base+eng_C0.03': ('base+eng', sk_fp(LR(0.03))),
    'lr_base+eng_C0.003': ('base+eng', sk_fp(LR(0.003))),
    'lr_base+eng_C0.005': ('base+eng', sk_fp(LR(0.005))),
    'lr_base+eng_C0.01_unbalanced': ('base+eng', sk_fp(LR(0.01, None))),
    'mirror_base+eng_C0.01': ('base+eng', mirror_fp(0.01)),
    'mirror_base+eng_C0.01_notta': ('base+eng', mirror_fp(0.01, tta=False)),
    'mirror_base+eng_C0.03': ('base+eng', mirror_fp(0.03)),
    'mirror_base+eng_C0.005': ('base+eng', mirror_fp(0.005, tta=False)),
    'mirror_base+eng_C0.01_unbalanced': ('base+eng', mirror_fp(0.01, tta=False, cw=None)),
    'mirror_base+eng_noopen_C0.01': ('base+eng', mirror_fp(0.01, tta=False, Xmap=_drop(_OPEN_BS + _OPEN_AU + _OPEN_GEO + _OPEN_ENG, NB + len(ENG_NAMES)))),
    'lr_base+eng_C0.1': ('base+eng', sk_fp(LR(0.1))),
    'lr_bs+aus+eng_C0.03': ('bs+aus+eng', sk_fp(LR(0.03))),
    'lr_base+eng_noopen': ('base+eng', sk_fp(LR(0.03), _drop(_OPEN_BS + _OPEN_AU + _OPEN_GEO + _OPEN_ENG, NB + len(ENG_NAMES)))),
    'svm_base_C1': ('base', sk_fp(SVM(1))),
    'svm_base_C3': ('base', sk_fp(SVM(3))),
    'svm_base_C10': ('base', sk_fp(SVM(10))),
    'svm_base+eng_C3': ('base+eng', sk_fp(SVM(3))),
    'svm_base+eng_C10': ('base+eng', sk_fp(SVM(10))),
    'hgb_base': ('base', sk_fp(HGB(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0))),
    'hgb_base+eng': ('base+eng', sk_fp(HGB(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0))),
    'mlp_base_h64_a1': ('base', mlp_fp(64, 1.0)),
    'mlp_base_h64_a10': ('base', mlp_fp(64, 10.0)),
    'mlp_base+eng_h64_a3': ('base+eng', mlp_fp(64, 3.0)),
}


def row(name, y, P, secs=None):
    s = scores(y, P.argmax(1))
    rec = ' '.join('%s %.0f' % (k[:4], 100 * v) for k, v in s['rec'].items())
    return '%-28s acc7 %.1f  acc6 %.1f  uar7 %.1f  uar6 %.1f | %s%s' % (
        name, 100 * s['acc7'], 100 * s['acc6'], 100 * s['uar7'], 100 * s['uar6'], rec, '' if secs is None else '  (%.0f s)' % secs)


if __name__ == '__main__':
    items = load('photos.pkl')
    names = sys.argv[1:] or list(CANDIDATES)
    data = {}
    for name in names:
        fs, fp = CANDIDATES[name]
        if fs not in data:
            X, y, g, c = photos_xy(items, FEATS[fs]); data[fs] = (corpus_std(X, c), y, g)
        X, y, g = data[fs]
        t = time.time(); P = loio(X, y, g, fp)
        np.save(D + 'oof_%s.npy' % name, P); np.save(D + 'oof_y.npy', y)
        print(row(name, y, P, time.time() - t), flush=True)
