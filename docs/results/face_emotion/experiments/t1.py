from exp import *
import sys
items = load('photos.pkl'); dev = load('dev.pkl'); talk = load('talk.pkl')
X, y, g, c = photos_xy(items)
sd = {k: np.maximum(X[c == k].std(0), 1e-6) for k in set(c)}
Xs = corpus_std(X, c)
SD = np.stack([sd[k] for k in c])
deltas = []
for it in talk:
    f = base_feats(it); f = f[np.isfinite(f).all(1)]
    if len(f) > 5: deltas.append(f - np.median(f, 0))
deltas = np.concatenate(deltas); print('deltas', deltas.shape)
rng = np.random.default_rng(0)
def rep(name, P):
    s = scores(y, P.argmax(1)); print('%-30s acc7 %.4f uar7 %.4f acc6 %.4f uar6 %.4f' % (name, s['acc7'], s['uar7'], s['acc6'], s['uar6']), {a: round(b, 2) for a, b in s['rec'].items()}, flush=True)
def fit(Xtr, ytr, SDtr, K, scale, C, mir):
    Xa, ya = [Xtr], [ytr]
    for k in range(K):
        d = deltas[rng.integers(0, len(deltas), len(Xtr))] * scale
        Xa.append(Xtr + d / SDtr); ya.append(ytr)
    Xa, ya = np.vstack(Xa), np.concatenate(ya)
    if mir: Xa, ya = np.vstack([Xa, mirror(Xa)]), np.concatenate([ya, ya])
    sc = StandardScaler().fit(Xa); m = make_lr(C).fit(sc.transform(Xa), ya)
    if mir: return lambda F: (m.predict_proba(sc.transform(F)) + m.predict_proba(sc.transform(mirror(F)))) / 2
    return lambda F: m.predict_proba(sc.transform(F))
for K, scale, C, mir in [(0, 0, 0.03, True), (3, 1.0, 0.03, False), (3, 1.0, 0.03, True), (3, 1.5, 0.03, True)]:
    name = f'K={K} s={scale} C={C} mir={mir}'
    P = np.zeros((len(y), 7))
    for tr, te in GroupKFold(5).split(Xs, y, g):
        P[te] = fit(Xs[tr], y[tr], SD[tr], K, scale, C, mir)(Xs[te])
    rep(name, P)
    pred = fit(Xs, y, SD, K, scale, C, mir)
    print('   dev votes %d/%d, mean %d/%d' % (dev_eval(pred, dev)[:2] + dev_eval(pred, dev, agg='mean')[:2]), flush=True)
