from exp import *
from pretext.tasks.au import AUConfig
from pretext.tasks.au_rules import classify_frames
cfg = AUConfig(mapping='rules')
items = load('photos.pkl'); dev = load('dev.pkl')
def rfeat(it):
    x = base_feats(it)
    cls = classify_frames(np.nan_to_num(it['aus']), it['au_names'], cfg)
    oh = np.eye(7)[cls]; oh[~np.isfinite(x).all(1)] = np.nan
    return np.concatenate([x, oh], 1)
X, y, g, c = photos_xy(items, rfeat)
Xs = corpus_std(X, c)
def rep(name, P):
    s = scores(y, P.argmax(1)); print('%-30s acc7 %.4f uar7 %.4f acc6 %.4f uar6 %.4f' % (name, s['acc7'], s['uar7'], s['acc6'], s['uar6']), {a: round(b, 2) for a, b in s['rec'].items()}, flush=True)
rep('lr + rule one-hot', loio(Xs, y, g, lr_fp(0.03)))
sc = StandardScaler().fit(Xs); m = make_lr(0.03).fit(sc.transform(Xs), y)
pred = lambda F: m.predict_proba(sc.transform(F))
print('dev votes %d/%d' % dev_eval(pred, dev, feat=rfeat)[:2], 'mean %d/%d' % dev_eval(pred, dev, feat=rfeat, agg='mean')[:2])
