from exp import *
items = load('photos.pkl'); dev = load('dev.pkl')
X, y, g, c = photos_xy(items)
Xs = corpus_std(X, c)
# training rows: identity offset removed (identity mean over its photos -> the corpus mean, 0 after standardisation)
Xi = Xs.copy()
for k in set(g):
    r = g == k; Xi[r] = Xs[r] - Xs[r].mean(0)
def rep(name, P):
    s = scores(y, P.argmax(1)); print('%-30s acc7 %.4f uar7 %.4f acc6 %.4f uar6 %.4f' % (name, s['acc7'], s['uar7'], s['acc6'], s['uar6']), {a: round(b, 2) for a, b in s['rec'].items()}, flush=True)
for C in (0.03,):
    P = np.zeros((len(y), 7))
    for tr, te in GroupKFold(5).split(Xs, y, g):
        sc = StandardScaler().fit(Xi[tr]); m = make_lr(C).fit(sc.transform(Xi[tr]), y[tr])
        P[te] = m.predict_proba(sc.transform(Xs[te]))
    rep(f'train id-centred, test corpus C={C}', P)
    sc = StandardScaler().fit(Xi); m = make_lr(C).fit(sc.transform(Xi), y)
    pred = lambda F: m.predict_proba(sc.transform(F))
    print('dev votes %d/%d' % dev_eval(pred, dev)[:2], 'mean %d/%d' % dev_eval(pred, dev, agg='mean')[:2])
