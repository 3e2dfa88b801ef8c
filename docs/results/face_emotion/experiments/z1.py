from exp import *
from data_prep.signals import list_done_items, load_media
from data_prep import geometry
from pathlib import Path
items = load('photos.pkl')
# z of the 40 points, eye-centred, in inter-ocular units
ex = D + 'photos_extract'
Z = {}
for iid in list_done_items(ex):
    m = load_media(ex, iid)
    pts = geometry.to_isotropic(np.asarray(m.face['landmarks'], np.float32), *m.frame_size)
    r = (pts[:, geometry.RIGHT_EYE_OUTER] + pts[:, geometry.RIGHT_EYE_INNER]) / 2
    l = (pts[:, geometry.LEFT_EYE_OUTER] + pts[:, geometry.LEFT_EYE_INNER]) / 2
    iod = np.linalg.norm((l - r)[:, :2], axis=-1)
    Z[iid] = (pts[:, GEO, 2] - ((l + r) / 2)[:, None, 2]) / iod[:, None]
print(np.nanstd(np.concatenate(list(Z.values())), 0)[:5])
zf = lambda it: np.concatenate([base_feats(it), Z[it['id']]], 1)
X, y, g, c = photos_xy(items); Xz, _, _, _ = photos_xy(items, zf)
def rep(name, P):
    s = scores(y, P.argmax(1)); print('%-30s acc7 %.4f uar7 %.4f acc6 %.4f uar6 %.4f' % (name, s['acc7'], s['uar7'], s['acc6'], s['uar6']), {a: round(b, 2) for a, b in s['rec'].items()}, flush=True)
for C in (0.01, 0.03):
    rep(f'+z C={C}', loio(corpus_std(Xz, c), y, g, lr_fp(C)))
Xs = corpus_std(X, c)
Xq = np.concatenate([Xs, Xs[:, :68] ** 2], 1)
rep('+squares C=0.03', loio(Xq, y, g, lr_fp(0.03)))
