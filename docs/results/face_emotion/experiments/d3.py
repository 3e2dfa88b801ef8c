"""Dev-clip check of a finalist (once per finalist, never for selection): fit each member of m1.py on all
1,305 photographs, label the 31 dev clips (corpus-standardised over the 31, frame votes >= 35% / mean
probability) and count the right six-emotion clips. RUN=... python d3.py 'a,b' (an ensemble: mean probability)"""
import sys
from m1 import *

def dev_probs(name, items, dev):
    fs, fp = CANDIDATES[name]
    X, y, g, c = photos_xy(items, FEATS[fs])
    feats = [FEATS[fs](it) for it in dev]
    mean, scale = stats_from_frames(feats)
    frames = [((f[np.isfinite(f).all(1)]) - mean) / scale for f in feats]
    P = fp(corpus_std(X, c), y, np.concatenate(frames))
    return np.split(P, np.cumsum([len(f) for f in frames])[:-1])

if __name__ == '__main__':
    items, dev = load('photos.pkl'), load('dev.pkl')
    for combo in sys.argv[1:]:
        per = [dev_probs(n, items, dev) for n in combo.split(',')]
        chunks = [np.mean([p[i] for p in per], 0) for i in range(len(dev))]
        res = {}
        for agg in ('votes', 'mean'):
            it = iter([ch for ch in chunks if len(ch)])  # dev_eval skips clips without a face frame

            def take(f):
                ch = next(it); assert len(ch) == len(f); return ch
            right, n6, rows = dev_eval(take, dev, feat=base_feats, agg=agg, verbose=agg == 'votes')
            res[agg] = right
        print('%s: dev %d / %d (votes), %d / %d (mean)' % (combo, res['votes'], n6, res['mean'], n6), flush=True)
