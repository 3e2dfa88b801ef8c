"""Soft-vote ensembles of m1.py's candidates, leave identities out: the average of their out-of-fold probabilities
(the same folds, so this is each fold's soft vote). RUN=... python e1.py 'a,b' 'a,b,c' ..."""
import sys
from m1 import *

if __name__ == '__main__':
    y = np.load(D + 'oof_y.npy')
    for combo in sys.argv[1:]:
        P = np.mean([np.load(D + 'oof_%s.npy' % n) for n in combo.split(',')], 0)
        print(row(combo, y, P))
