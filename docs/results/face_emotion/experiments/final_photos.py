"""LOIO figures of the shipped configuration (blendshapes+aus+geometry, corpus standardisation, LR C=0.03)."""
from exp import *
items = load('photos.pkl')
X, y, g, c = photos_xy(items)
agree = np.array([float(it['row']['rater_agreement']) if str(it['row']['rater_agreement']) not in ('', 'nan') else np.nan for it in items])
emo = np.array([it['row']['emotion'] for it in items])
P = loio(corpus_std(X, c), y, g, lr_fp(0.03))
pred = P.argmax(1)
s = scores(y, pred); print('all', s)
keep = ~((emo == 'fearful') & (agree < 0.5))
print('dropped', (~keep).sum()); print('no low-agreement fear', scores(y[keep], pred[keep]))
six = P[:, 1:].argmax(1) + 1; e = y > 0
print('six, neutral excluded acc %.4f' % (six[e] == y[e]).mean())
print('emotional faces called neutral', ((pred == 0) & e).sum(), e.sum())
for k in sorted(set(c)):
    r = c == k; print(k, scores(y[r], pred[r])['acc6'], scores(y[r], pred[r])['acc7'])
