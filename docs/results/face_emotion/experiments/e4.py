from exp import *
items = load('photos.pkl')
X, y, g, c = photos_xy(items)
Xs = corpus_std(X, c)
P = loio(Xs, y, g, lr_fp(0.03))
from sklearn.metrics import confusion_matrix
print(confusion_matrix(y, P.argmax(1)))
for w in (1.0, 0.8, 0.6, 0.5, 0.4, 0.3):
    Q = P.copy(); Q[:, 0] *= w
    s = scores(y, Q.argmax(1)); print(w, 'acc7 %.4f acc6 %.4f uar6 %.4f neutral %.2f' % (s['acc7'], s['acc6'], s['uar6'], s['rec']['neutral']))
