from exp import *
from scipy.ndimage import median_filter, uniform_filter1d
items = load('photos.pkl'); dev = load('dev.pkl')
X, y, g, c = photos_xy(items)
Xs = corpus_std(X, c)
sc = StandardScaler().fit(Xs); m = make_lr(0.03).fit(sc.transform(Xs), y)
pred = lambda F: m.predict_proba(sc.transform(F))
def smooth_feat(sec, kind):
    def f(it):
        x = base_feats(it); ok = np.isfinite(x).all(1); x = x[ok]
        fps = 1 / np.median(np.diff(it['times'])) if len(it['times']) > 1 else 30
        w = max(1, int(round(sec * fps)))
        if len(x) == 0: return x
        if kind == 'median': x = median_filter(x, size=(w, 1), mode='nearest')
        elif kind == 'clipmedian': x = np.median(x, 0, keepdims=True)
        else: x = uniform_filter1d(x, w, axis=0, mode='nearest')
        return x
    return f
for sec, kind in [(0.3, 'median'), (0.6, 'median'), (1.0, 'median'), (2.0, 'median'), (0.6, 'mean'), (1.0, 'mean'), (0, 'clipmedian')]:
    f = smooth_feat(sec, kind)
    print(sec, kind, 'votes %d/%d' % dev_eval(pred, dev, feat=f)[:2], 'mean %d/%d' % dev_eval(pred, dev, feat=f, agg='mean')[:2], flush=True)
