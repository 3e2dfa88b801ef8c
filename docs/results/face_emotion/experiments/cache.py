"""Cache the raw face signals of an extraction folder (blendshapes, AUs, normalised mesh) per item: python cache.py EXTRACT_DIR REFS_CSV OUT.pkl (a work-folder cache of the measurement scripts)."""
import sys, pickle, numpy as np, pandas as pd
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[4]))  # the repository
from pathlib import Path
from data_prep.signals import list_done_items, load_media
from data_prep.face_emotion import normalised_geometry

def cache(extract_dir, refs_csv, out, max_frames=None):
    refs = pd.read_csv(refs_csv)
    base = Path(refs_csv).parent
    refs['abspath'] = [str((Path(p) if Path(p).is_absolute() else base / p).resolve()) for p in refs.path]
    by = refs.set_index('abspath').to_dict('index')
    items = []
    for iid in list_done_items(extract_dir):
        m = load_media(extract_dir, iid)
        p = str(Path(m.meta['path']).resolve())
        if p not in by or m.face is None:
            continue
        pres = np.asarray(m.face['present'])
        geo = normalised_geometry(np.asarray(m.face['landmarks']), *m.frame_size)
        items.append(dict(id=iid, path=p, row=by[p], present=pres,
                          blend=np.asarray(m.face['blendshapes'], np.float32),
                          aus=np.asarray(m.face['aus'], np.float32), au_names=list(m.meta['au_names']),
                          geo=geo.astype(np.float32), times=np.asarray(m.face['times']),
                          frame_size=m.frame_size))
    pickle.dump(items, open(out, 'wb'))
    print(out, len(items))

if __name__ == '__main__':
    cache(*sys.argv[1:4])
