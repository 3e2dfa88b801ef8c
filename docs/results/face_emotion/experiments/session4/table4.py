"""Markdown rows of results4.jsonl (the variants' table of docs/results/face_emotion/README.md, Session 4)."""
import json, sys
D = sys.argv[1] if len(sys.argv) > 1 else '/work/runs/face25b/'
seen = {}
for l in open(D + 'results4.jsonl'):
    r = json.loads(l); seen[r['name']] = r
for name, r in seen.items():
    if name == 'mean-x:none:0':
        continue  # a mistyped duplicate of neutral:none:0 (same figures)
    kind = name.split(':')[1]
    talk = '%d / %d' % (r['talk_neutral'], r['talk_n']) if kind in ('none',) else (
        '%d / %d (non-GRID)' % (r['talk_nongrid_neutral'], r['talk_nongrid_n']) if kind == 'grid' else '(fitted on)')
    grid = '%.1f%%' % (100 * r['pool']['grid']['neutral']) + ('' if kind != 'grid' else ' (fitted on)')
    print('| `%s` | %.1f%% | %.1f%% | %.0f%% | %s | %s | %.1f%% / %.1f%% | %d / %d |' % (
        name, 100 * r['acc7'], 100 * r['acc6'], 100 * r['rec'][0], talk, grid,
        100 * r['pool']['lrw']['neutral'], 100 * r['pool']['all']['neutral'], r['dev'], r['dev_n']))
