from exp import *
items = load('photos.pkl')
X, y, g, c = photos_xy(items)
# check mirror on raw: mean abs diff between x and mirror(x) should be small-ish
print('mirror diff', np.abs(X - mirror(X)).mean(), np.abs(X - X[np.random.permutation(len(X))]).mean())
def rep(name, P):
    s = scores(y, P.argmax(1)); print('%-30s acc7 %.4f uar7 %.4f acc6 %.4f uar6 %.4f' % (name, s['acc7'], s['uar7'], s['acc6'], s['uar6']), {a: round(b, 2) for a, b in s['rec'].items()}, flush=True)
Xs = corpus_std(X, c)
for C in (0.01, 0.03, 0.1):
    def fp(Xtr, ytr, Xte, gtr=None, C=C):
        Xa = np.vstack([Xtr, mirror(Xtr)]); ya = np.concatenate([ytr, ytr])
        sc = StandardScaler().fit(Xa); m = make_lr(C).fit(sc.transform(Xa), ya)
        return (m.predict_proba(sc.transform(Xte)) + m.predict_proba(sc.transform(mirror(Xte)))) / 2
    rep(f'mirror-aug C={C}', loio(Xs, y, g, fp))
    rep(f'sym C={C}', loio(sym(Xs), y, g, lr_fp(C)))
