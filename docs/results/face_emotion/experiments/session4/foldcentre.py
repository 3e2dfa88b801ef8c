"""Check: the neutral centre of each photo corpus computed from the training identities of each fold only
(the fit command computes it over the whole corpus before cross-validation)."""
from v4 import *
photos = load('photos.pkl'); Xp, yp, gp, cp = photos_xy(photos)
P = np.zeros((len(yp), 7))
for tr, te in GroupKFold(5).split(Xp, yp, gp):
    Xs = np.empty_like(Xp)
    for k in set(cp):
        r = cp == k; rt = np.zeros(len(yp), bool); rt[tr] = True
        n = r & rt & (yp == 0)
        ctr = Xp[n].mean(0) if n.any() else Xp[r & rt].mean(0)
        Xs[r] = (Xp[r] - ctr) / np.maximum(Xp[r].std(0), 1e-6)
    P[te] = fit(Xs[tr], yp[tr])(Xs[te])
s = photo_scores(yp, P)
print('fold-only neutral centre: acc7 %.1f acc6 %.1f uar7 %.1f rec %s' % (100 * s['acc7'], 100 * s['acc6'], 100 * s['uar7'], '/'.join('%.0f' % (100 * x) for x in s['rec'])))
