"""Session 4 variants: python run4.py NAME ... -> one row each (photos LOIO; held-out neutral talking shares;
dev clips; pool shares) appended to results4.jsonl.
NAME = centre:extra:w[:bias]   centre in {mean, neutral}; extra in {none, grid, talk, both}; w weight of the
extra neutral frames (x the photographs' neutral class); bias multiplies neutral's probability at labelling."""
import sys, json, time
from v4 import *

photos, dev, talk, pool = load('photos.pkl'), load('dev.pkl'), load('talk.pkl'), load('pool.pkl')
Xp, yp, gp, cp = photos_xy(photos)
grid_arrays = [it['X'] for it in pool if 'grid_s1' in it['source']]
talk_arrays = [it['X'] for it in talk]
talk_is_grid = np.array(['grid_lipnet' in it['path'] for it in talk])

def extra_frames(kind, centre):
    if kind == 'none': return None
    parts = []
    if kind in ('grid', 'both'): parts.append(talk_frames(grid_arrays, centre, 5))
    if kind in ('talk', 'both'): parts.append(talk_frames(talk_arrays, centre, 30))
    return np.vstack([f / sc for f, sc in parts])

def run(name):
    centre, kind, w, *rest = name.split(':'); w = float(w); bias = float(rest[0]) if rest else 1.0; C = float(rest[1]) if len(rest) > 1 else 0.01
    lab_centre = 'mean' if centre in ('mean', 'neutral-m') else 'median'
    if centre == 'mean-med': centre = 'mean'
    centre = 'neutral' if centre in ('neutral', 'neutral-m') else centre
    t0 = time.time()
    Xs = photos_std(Xp, yp, cp, centre, gp)
    E = extra_frames(kind, centre)
    P = biased(loio(Xs, yp, gp, E, w, C), bias)
    ph = photo_scores(yp, P)
    model = fit(Xs, yp, E, w, C)
    tl = np.array(label_clips(model, talk_arrays, lab_centre, bias))
    d6, n6, dlab = dev_score(model, dev, lab_centre, bias)
    ps = pool_shares(model, pool, lab_centre, bias)
    r = dict(name=name, acc7=ph['acc7'], acc6=ph['acc6'], uar7=ph['uar7'], rec=ph['rec'],
             talk_neutral=int((tl == 0).sum()), talk_n=len(tl),
             talk_nongrid_neutral=int((tl[~talk_is_grid] == 0).sum()), talk_nongrid_n=int((~talk_is_grid).sum()),
             talk_grid_neutral=int((tl[talk_is_grid] == 0).sum()), talk_grid_n=int(talk_is_grid.sum()),
             talk_labels=[EMOTION_CLASSES[i] for i in tl],
             dev=d6, dev_n=n6, dev_labels=[EMOTION_CLASSES[i] if i >= 0 else '-' for i in dlab],
             pool={k: dict(neutral=v[0], n=v[1], shares=list(np.round(v[2], 4))) for k, v in ps.items()},
             secs=round(time.time() - t0))
    print('%-22s acc7 %.1f acc6 %.1f uar7 %.1f rec %s | talk %d/%d (nonGRID %d/%d, GRID %d/%d) | dev %d/%d | pool neutral all %.1f grid %.1f lrw %.1f (%ds)' % (
        name, 100 * r['acc7'], 100 * r['acc6'], 100 * r['uar7'], '/'.join('%.0f' % (100 * x) for x in r['rec']),
        r['talk_neutral'], r['talk_n'], r['talk_nongrid_neutral'], r['talk_nongrid_n'], r['talk_grid_neutral'], r['talk_grid_n'],
        d6, n6, 100 * ps['all'][0], 100 * ps['grid'][0], 100 * ps['lrw'][0], r['secs']), flush=True)
    with open(D + 'results4.jsonl', 'a') as f:
        f.write(json.dumps(r, default=float) + '\n')

if __name__ == '__main__':
    for n in sys.argv[1:]:
        run(n)
