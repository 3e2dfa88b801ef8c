"""Details of a finalist against the shipped configuration, from m1.py's out-of-fold probabilities: per-fold
six-emotion accuracy (the spread of the 5 identity folds), the fearful photographs observers agree on, per
corpus, and the confusion matrix. RUN=... python f1.py FINALIST [BASELINE]"""
import sys
from m1 import *
from sklearn.metrics import confusion_matrix

if __name__ == '__main__':
    name, base = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else 'lr_base_C0.03')
    items = load('photos.pkl')
    X, y, g, c = photos_xy(items)
    emo = np.array([it['row']['emotion'] for it in items])
    agree = np.array([float(it['row']['rater_agreement']) if str(it['row']['rater_agreement']) not in ('', 'nan') else np.nan for it in items])
    keep = ~((emo == 'fearful') & (agree < 0.5))
    folds = list(GroupKFold(5).split(X, y, g))
    for n in (base, name):
        P = np.load(D + 'oof_%s.npy' % n); pred = P.argmax(1); e = y > 0
        per_fold = [(pred[te][e[te]] == y[te][e[te]]).mean() for _, te in folds]
        print(row(n, y, P))
        print('   per-fold six-emotion acc', ' '.join('%.1f' % (100 * v) for v in per_fold))
        print('   without low-agreement fear (%d dropped):' % (~keep).sum(), row('', y[keep], P[keep]))
        for k in sorted(set(c)):
            r = c == k; s = scores(y[r], pred[r]); print('   %s: acc7 %.1f acc6 %.1f' % (k, 100 * s['acc7'], 100 * s['acc6']))
        six = P[:, 1:].argmax(1) + 1
        print('   six emotions, neutral excluded: %.1f; emotional faces called neutral: %d of %d' % (
            100 * (six[e] == y[e]).mean(), ((pred == 0) & e).sum(), e.sum()))
        print(confusion_matrix(y, pred))
    a = np.load(D + 'oof_%s.npy' % base).argmax(1) == y; b = np.load(D + 'oof_%s.npy' % name).argmax(1) == y
    e = y > 0
    print('emotional photos: finalist right & baseline wrong %d, the reverse %d' % ((b & ~a & e).sum(), (a & ~b & e).sum()))
    # identity-clustered paired bootstrap of the six-emotion gain
    rng = np.random.default_rng(0); ids = np.unique(g); gains = []
    by = {i: np.flatnonzero((g == i) & e) for i in ids}
    for _ in range(2000):
        s = np.concatenate([by[i] for i in rng.choice(ids, len(ids))])
        gains.append(b[s].mean() - a[s].mean())
    print('six-emotion gain %.1f points, identity bootstrap 95%% interval %.1f .. %.1f' % (
        100 * (b[e].mean() - a[e].mean()), 100 * np.percentile(gains, 2.5), 100 * np.percentile(gains, 97.5)))
