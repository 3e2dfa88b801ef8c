from v4 import *
from data_prep.face_emotion import load_mapping, corpus_statistics
pool = load('pool.pkl')
def pick(tag, names):
    out = []
    for n in names:
        its = [it for it in pool if tag in it['source'] and n.replace('.', '_') in it['id'].replace('.', '_')]
        out.append(its[0] if its else None)
    return out
import os
gn = sorted(os.listdir('/work/shared/data/av_pretrain/grid_s1'))[:8]
ln = sorted(os.listdir('/work/shared/data/av_pretrain/lrw_ar'))[:8]
g, l = pick('grid_s1', gn), pick('lrw_ar', ln)
print([x is not None for x in g], [x is not None for x in l])
for k in (6, 8):
    for name, path in (('shipped', None), ('new', D + 'new_default.json')):
        m = load_mapping(path)
        items = [x for x in g[:k] + l[:k] if x is not None]
        st = corpus_statistics([it['X'] for it in items])
        labs = [EMOTION_CLASSES[votes(m.predict_proba(finite(it['X']), st))] for it in items]
        print(k, name, labs)
