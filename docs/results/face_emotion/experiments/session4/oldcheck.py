"""The new test's corpus labelled with the previous default (scratch check that the test can fail)."""
import sys, pandas as pd
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[5]))  # the repository
from pathlib import Path
from data_prep.extract import ExtractOptions, extract_corpus
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
A = Path('/work/shared/data/av_pretrain'); T = Path(__import__('os').environ.get('RUN', '/work/runs/face25b')) / 'oldcheck'
grid = sorted((A / 'grid_s1').glob('*.mp4'))[:8]; br = sorted((A / 'lrw_ar').glob('*.mp4'))[:8]
T.mkdir(exist_ok=True)
pd.DataFrame({'path': [str(p) for p in grid + br], 'speaker': ['grid_s1'] * 8 + [p.stem for p in br]}).to_csv(T / 'c.csv', index=False)
extract_corpus(T / 'c.csv', T / 'out', ExtractOptions(max_fps=10), progress=False)
for f in (str(T.parent / 'old_default.json'), ''):
    cfg = build_label_config({'tasks': ['au'], 'segmentation': {'mode': 'clip'}, 'au': {'mapping_file': f}})
    t = label_corpus(T / 'out', cfg, dest=T / ('lab_old' if f else 'lab_new'), progress=False).table
    t = t[t.au_mask]
    print(f or 'new default', t.loc[t.speaker == 'grid_s1', 'au_class'].tolist())
