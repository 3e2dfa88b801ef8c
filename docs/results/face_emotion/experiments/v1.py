from exp import *
items = load('photos.pkl'); dev = load('dev.pkl')
X, y, g, c = photos_xy(items)
Xs = corpus_std(X, c)
feats = [base_feats(it) for it in dev]; mean, scale = stats_from_frames(feats)
def spk(it):
    s = it['row']['speaker']
    return s if isinstance(s, str) and s else 'mead_eamm'
spks = np.array([spk(it) for it in dev])
labs = np.array([label(it['row']['emotion']) for it in dev])
VF, VY, VS = [], [], []
for it, f, s, l in zip(dev, feats, spks, labs):
    f = f[np.isfinite(f).all(1)]
    if l < 0 or not len(f): continue
    f = f[np.linspace(0, len(f) - 1, min(len(f), 30)).round().astype(int)]
    VF.append((f - mean) / scale); VY += [l] * len(f); VS += [s] * len(f)
VF, VY, VS = np.vstack(VF), np.array(VY), np.array(VS)
def run(C, wv):
    right = 0; rows = []
    for s in sorted(set(spks)):
        tr = VS != s
        Xa = np.vstack([Xs, VF[tr]]); ya = np.concatenate([y, VY[tr]])
        sw = np.concatenate([np.ones(len(y)), np.full(tr.sum(), wv)])
        sc = StandardScaler().fit(Xa)
        # balanced class weights times sample weights
        cw = len(ya) / (7 * np.bincount(ya, minlength=7)); sw = sw * cw[ya]
        m = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(Xa), ya, sample_weight=sw)
        pred = lambda F: m.predict_proba(sc.transform(F))
        sub = [it for it in dev if spk(it) == s]
        for it in sub:
            f = base_feats(it); f = f[np.isfinite(f).all(1)]
            P = pred((f - mean) / scale); fr = np.bincount(P.argmax(1), minlength=7) / len(P)
            b = fr[1:].argmax() + 1; p = b if fr[b] >= 0.35 else 0
            t = label(it['row']['emotion'])
            rows.append((it['path'].split('/')[-1], t, p))
            right += (t > 0 and p == t)
    return right, rows
for C, wv in [(0.03, 1.0), (0.03, 0.5), (0.03, 2.0)]:
    r, rows = run(C, wv)
    print(C, wv, 'LOSO dev', r, '/ 28', [x[0][:14] for x in rows if x[1] > 0 and x[1] != x[2]], flush=True)
