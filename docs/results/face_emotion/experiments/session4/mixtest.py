"""A test-sized mixed corpus: k GRID s1 clips + k LRW-AR clips labelled together; GRID's neutral share."""
from v4 import *
from data_prep.face_emotion import load_mapping, corpus_statistics
pool = load('pool.pkl')
grid = [it for it in pool if 'grid_s1' in it['source']]
lrw = [it for it in pool if 'lrw_ar' in it['source']]
rng = np.random.default_rng(0)
for k in (6, 10):
    for name, path in (('shipped', None), ('new', D + 'new_default.json')):
        m = load_mapping(path); shares = []
        for rep in range(10):
            g = [grid[i] for i in rng.choice(len(grid), k, replace=False)]
            l = [lrw[i] for i in rng.choice(len(lrw), k, replace=False)]
            st = corpus_statistics([it['X'] for it in g + l])
            labs = [votes(m.predict_proba(finite(it['X']), st)) for it in g]
            shares.append(np.mean(np.array(labs) == 0))
        print(k, name, np.round(shares, 2))
