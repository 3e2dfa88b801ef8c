"""GRID s1 alone as the labelled corpus (groups of 6 clips, as a test would): neutral share, shipped vs new."""
from v4 import *
from data_prep.face_emotion import load_mapping, corpus_statistics
pool = load('pool.pkl')
grid = [it for it in pool if 'grid_s1' in it['source']]
for name, path in (('shipped', None), ('new', D + 'new_default.json')):
    m = load_mapping(path)
    shares = []
    for k in range(0, 60, 6):
        arrays = [it['X'] for it in grid[k:k + 6]]
        st = corpus_statistics(arrays)
        labs = [votes(np.nan_to_num(m.predict_proba(finite(x), st))) for x in arrays]
        shares.append(np.mean(np.array(labs) == 0))
    st = corpus_statistics([it['X'] for it in grid])
    labs = [votes(m.predict_proba(finite(it['X']), st)) for it in grid]
    print(name, 'groups of 6:', np.round(shares, 2), 'all 1000 as one corpus: %.3f' % np.mean(np.array(labs) == 0))
