"""Session 4 cache: per-frame features of the shipped feature groups (package's frame_features) for the
photographs, the dev clips, the plain talking clips and the pool's segments. python cache4.py WHICH"""
import sys, pickle, numpy as np, pandas as pd
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[5]))  # the repository
from pathlib import Path
from data_prep.signals import list_done_items, load_media
from data_prep.face_emotion import frame_features
G = ["blendshapes", "aus", "geometry", "measures"]
OUT = Path(__import__('os').environ.get('RUN', '/work/runs/face25b'))

def feats(m):
    return frame_features(m.face, m.frame_size, list(m.meta['au_names']), G)

def by_refs(extract_dir, refs_csv, out):
    refs = pd.read_csv(refs_csv); base = Path(refs_csv).parent
    refs['abspath'] = [str((Path(p) if Path(p).is_absolute() else base / p).resolve()) for p in refs.path]
    by = refs.set_index('abspath').to_dict('index')
    items = []
    for iid in list_done_items(extract_dir):
        m = load_media(extract_dir, iid); p = str(Path(m.meta['path']).resolve())
        if p not in by or m.face is None:
            continue
        items.append(dict(id=iid, path=p, row=by[p], X=feats(m)))
    pickle.dump(items, open(OUT / out, 'wb')); print(out, len(items))

def pool():
    d = '/work/runs/scaling/pool_extract'
    seg = pd.read_parquet(d + '/segments.parquet', columns=['segment_id', 'media_id', 'source', 'start', 'end', 'au_mask', 'au_class', 'speaker'])
    items = []
    for iid in list_done_items(d):
        m = load_media(d, iid)
        if m.face is None or not np.any(m.face['present']):
            continue
        X = feats(m); t = np.asarray(m.face['times']); pres = np.asarray(m.face['present'])
        segs = []
        for r in seg[seg.media_id == iid].itertuples():
            sel = (t >= r.start) & (t < r.end) & pres
            segs.append(dict(segment_id=r.segment_id, sel=np.flatnonzero(sel), au_mask=bool(r.au_mask), shipped=r.au_class))
        src = seg.source[seg.media_id == iid]
        items.append(dict(id=iid, source=str(src.iloc[0]) if len(src) else '', X=X.astype(np.float32), segs=segs))
    pickle.dump(items, open(OUT / 'pool.pkl', 'wb')); print('pool', len(items))

if __name__ == '__main__':
    w = sys.argv[1]
    if w == 'photos': by_refs('/work/runs/face25/photos_extract', '/work/shared/data/expression_faces/manifest.csv', 'photos.pkl')
    if w == 'dev': by_refs('/work/runs/face25/dev_extract', '/work/runs/face25/refs_abs.csv', 'dev.pkl')
    if w == 'talk': by_refs('/work/runs/face25/talk_extract', '/work/runs/face25/talk_abs.csv', 'talk.pkl')
    if w == 'pool': pool()
