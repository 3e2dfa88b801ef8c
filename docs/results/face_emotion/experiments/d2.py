from exp import *
items = load('photos.pkl'); dev = load('dev.pkl')
X, y, g, c = photos_xy(items)
Xs = corpus_std(X, c)
sc = StandardScaler().fit(Xs); m = make_lr(0.03).fit(sc.transform(Xs), y)
feats = [base_feats(it) for it in dev]; mean, scale = stats_from_frames(feats)
print(' ' * 36, ' '.join('%5s' % c[:5] for c in EMOTION_CLASSES), ' jawOpen AU26')
for it, f in zip(dev, feats):
    f = f[np.isfinite(f).all(1)]
    P = m.predict_proba(sc.transform((f - mean) / scale))
    fr = np.bincount(P.argmax(1), minlength=7) / len(P)
    print('%-36s' % it['path'].split('/')[-1][:36], ' '.join('%5.2f' % v for v in fr), ' %.2f' % np.nanmean(it['blend'][:, 25]), len(f))
