# Archived record (not library code): the diagnostic that chose what mode lrprobe reads, by dev-speaker UAR;
# the grid itself runs finetune/layer_statistics.py. Run as: python design_diagnostic.py ENCODER_DIR OUT.csv
"""Diagnostic: multi-layer statistics of an encoder + the baseline's LR readout."""
import sys, numpy as np, pandas as pd, torch
sys.path.insert(0, "/work/main")
from encoders import load_pretrained, build_encoder, read_encoder_config
from encoders.cnn import _time_mask
from avpretext.common.audio import read_audio
from finetune.splits import make_splits, label_subset
from finetune.baseline import select_c
from finetune.opensmile_features import Functionals
from finetune.metrics import classification_metrics
torch.manual_seed(0)
man = pd.read_csv("/work/runs/scaling/ravdess.csv", dtype={"speaker": str})
classes = sorted(man["label"].unique())
splits = make_splits(man, "folds", 4, 2, 0)
def ms(x):  # x (C, F) -> 2C
    return np.concatenate([x.mean(1).numpy(), x.std(1).numpy()])
def embed(enc, paths):
    enc.eval(); out = {}
    with torch.no_grad():
        for p in paths:
            w = read_audio(p)
            n = min(len(w), 160000); s = (len(w) - n)//2; w = w[s:s+n]
            x, fr = enc.input_features(w[None], torch.tensor([n]))
            parts = {"logmel": ms(x[0, 0, :, :int(fr[0])])}
            x = x * _time_mask(fr, x)
            for i, st in enumerate(enc.stages):
                x, fr = st(x, fr)
                parts[f"s{i}"] = ms(x[0].mean(1)[:, :int(fr[0])])
                v = x[0][:, :, :int(fr[0])]; C_, Fq, T_ = v.shape
                parts[f"b{i}"] = ms(v.reshape(C_, 4, Fq // 4, T_).mean(2).reshape(C_ * 4, T_))
            out[p] = parts
    return out
paths = list(man["path"])
P = sys.argv[1]
name, cfg = read_encoder_config(P)
E = {"pretrained": embed(load_pretrained(P), paths),
     "random": embed(build_encoder(name, **{k: v for k, v in cfg.items() if k != "name"}), paths)}
vals, _ = Functionals("egemaps").compute(paths)
eg = dict(zip(paths, vals))
variants = {"egemaps": lambda p: eg[p], "logmel": lambda p: E["random"][p]["logmel"]}
for k in ("pretrained", "random"):
    variants[f"{k}-s2"] = (lambda k: lambda p: E[k][p]["s2"])(k)
    variants[f"{k}-s012+logmel"] = (lambda k: lambda p: np.concatenate([E[k][p][f"s{i}"] for i in range(3)] + [E[k][p]["logmel"]]))(k)
    variants[f"{k}-b012"] = (lambda k: lambda p: np.concatenate([E[k][p][f"b{i}"] for i in range(3)]))(k)
    variants[f"{k}-s012"] = (lambda k: lambda p: np.concatenate([E[k][p][f"s{i}"] for i in range(3)]))(k)
rows = []
y = lambda r: r["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
for frac in (0.1, 0.25):
    for sp in splits:
        for seed in (0, 1, 2):
            tr = label_subset(sp.train, frac, seed, "label")
            for key, f in variants.items():
                X = lambda r: np.stack([f(p) for p in r["path"]])
                m, C, _ = select_c(X(tr), y(tr), X(sp.dev), y(sp.dev), classes)
                u = classification_metrics(y(sp.test), m.predict(X(sp.test)), classes)["uar"]
                d = classification_metrics(y(sp.dev), m.predict(X(sp.dev)), classes)["uar"]
                rows.append(dict(frac=frac, fold=sp.name, seed=seed, feats=key, uar=u, dev=d, C=C))
df = pd.DataFrame(rows); df.to_csv(sys.argv[2], index=False)
print(df.groupby(["feats", "frac"])[["dev", "uar"]].mean().unstack().round(3))
