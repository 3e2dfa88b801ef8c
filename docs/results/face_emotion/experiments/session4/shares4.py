"""Pool class shares (% of face segments) of a labelled copy of the pool, in docs/label_audit/pool_shares.txt's
layout; inserts the rows of MAPPING after each corpus's 'learned (shipped 12-07)' row."""
import sys, pandas as pd
seg, name, txt = sys.argv[1], sys.argv[2], sys.argv[3]
t = pd.read_parquet(seg, columns=['source', 'au_mask', 'au_class'])
t = t[t.au_mask]
t['corpus'] = [s.split('/data/', 1)[-1] for s in t.source]
classes = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'anger', 'disgust']
rows = {}
for c, g in [('ALL', t)] + sorted(t.groupby('corpus')):
    sh = g.au_class.value_counts(normalize=True) * 100
    rows[c] = '%23s %40s %9d' % (name, c, len(g)) + ''.join('%*.1f' % (len(k) + 2 if k != 'neutral' else 9, sh.get(k, 0.0)) for k in classes)
lines = open(txt).read().rstrip('\n').split('\n')
out = [lines[0]]
for l in lines[1:]:
    out.append(l)
    if l.strip().startswith('learned (shipped 12-07)'):
        corpus = l.split()[3]
        if corpus in rows: out.append(rows.pop(corpus))
open(txt, 'w').write('\n'.join(out) + '\n')
print('\n'.join(out)); print('not placed:', list(rows))
