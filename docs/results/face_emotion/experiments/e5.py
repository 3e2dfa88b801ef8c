from exp import *
from sklearn.neural_network import MLPClassifier
items = load('photos.pkl')
X, y, g, c = photos_xy(items)
Xs = corpus_std(X, c)
def rep(name, P):
    s = scores(y, P.argmax(1)); print('%-34s acc7 %.4f uar7 %.4f acc6 %.4f uar6 %.4f' % (name, s['acc7'], s['uar7'], s['acc6'], s['uar6']), {a: round(b, 2) for a, b in s['rec'].items()}, flush=True)
full = lambda it: np.concatenate([it['blend'][:, BS_IDX], it['aus'], it['geo'][:, :468].reshape(len(it['geo']), -1)], 1)
Xf, _, _, _ = photos_xy(items, full); Xfs = corpus_std(Xf, c)
for C in (0.003, 0.01):
    rep(f'full mesh C={C}', loio(Xfs, y, g, lr_fp(C)))
for h, a in ((32, 3.0), (64, 10.0), (128, 30.0)):
    def fp(Xtr, ytr, Xte, gtr=None):
        sc = StandardScaler().fit(Xtr); out = np.zeros((len(Xte), 7))
        for s in range(3):
            m = MLPClassifier((h,), alpha=a, max_iter=600, random_state=s).fit(sc.transform(Xtr), ytr)
            out[:, m.classes_] += m.predict_proba(sc.transform(Xte)) / 3
        return out
    rep(f'mlp {h} a={a}', loio(Xs, y, g, fp))
