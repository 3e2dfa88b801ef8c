"""Issue 24 report (H8): pair the grid folders' cells with the grid's own pairing code, archive them.
Writes docs/results/baseline/ravdess_acoustic_stats/{cells.csv,summary.csv,summary.md,pretrained_vs_scratch.csv}
and replaces this experiment's rows in docs/results/baseline/summary.csv (when it exists)."""
import json, sys
from pathlib import Path
import pandas as pd
from avpretext.common.io import write_atomic
from experiments.baseline import summary_markdown, summary_rows
from finetune.experiment import collect, finished_cells, paired_differences

WORK = Path("/work/main/runs/issue24")
ARCHIVE = Path("/work/main/docs/results/baseline")
OUT = ARCHIVE / "ravdess_acoustic_stats"
PRE, SCR = "pretrained-energy,acoustic+stats", "scratch+stats"


def cells_of(folder):
    folder = WORK / "exp" / folder
    return collect(folder, finished_cells(folder)) if (folder / "cells").is_dir() else pd.DataFrame()


baseline = cells_of("baseline")
# one init of one mode per folder; a suffixed folder (_b) holds folds run by a parallel process
folders = sorted(p.name for p in (WORK / "exp").iterdir() if p.name.split("_")[0] in ("probe", "finetune"))
OLD = "pretrained-energy,cluster+stats"  # the audio-only tasks before the acoustic one, same pool and steps
neural = pd.concat([cells_of(f).assign(method=OLD if f.endswith("_energycluster") else None) for f in folders],
                   ignore_index=True)
neural["method"] = neural["method"].fillna(neural["init"].map({"pretrained": PRE, "scratch": SCR}))
neural = neural.drop_duplicates(["method", "mode", "init", "fraction", "fold", "seed"])
allcells = pd.concat([baseline.assign(method="egemaps"), neural], ignore_index=True)
OUT.mkdir(parents=True, exist_ok=True)
write_atomic(OUT / "cells.csv", lambda t: allcells.to_csv(t, index=False, float_format="%.4f"))
summary = summary_rows("ravdess", baseline, neural)
write_atomic(OUT / "summary.csv", lambda t: summary.to_csv(t, index=False, float_format="%.2f"))
# pretrained - scratch per method, mode and fraction, matched on fold and seed
vs = pd.concat([pd.DataFrame()] + [paired_differences(pd.concat([neural[neural["method"] == m], neural[neural["method"] == SCR]])
                                   .drop(columns="method")).assign(method=m) for m in (PRE, OLD)
                if (neural["method"] == m).any()], ignore_index=True)
cols = ["method", "mode", "fraction", "pairs", "folds", "uar_diff", "uar_ci_low", "uar_ci_high", "uar_fold_ci_low",
        "uar_fold_ci_high"]
vs = vs[[c for c in cols if c in vs]] if len(vs) else vs
write_atomic(OUT / "pretrained_vs_scratch.csv", lambda t: vs.to_csv(t, index=False, float_format="%.4f"))
text = summary_markdown(summary) + "\nPretrained - scratch (UAR points; 95% CI over matched cells / over fold means):\n\n"
text += "| method | mode | labels | pairs | diff | CI cells | CI folds |\n|---|---|---|---|---|---|---|\n"
for _, r in vs.iterrows():
    text += (f"| {r['method']} | {r['mode']} | {r['fraction']:.0%} | {int(r['pairs'])} | {100 * r['uar_diff']:+.1f} | "
             f"[{100 * r['uar_ci_low']:+.1f}, {100 * r['uar_ci_high']:+.1f}] | "
             f"[{100 * r['uar_fold_ci_low']:+.1f}, {100 * r['uar_fold_ci_high']:+.1f}] |\n")
write_atomic(OUT / "summary.md", lambda t: t.write_text(text))
print(text)
main = ARCHIVE / "summary.csv"
if main.exists() and "--append" in sys.argv:
    old = pd.read_csv(main)
    mine = summary[summary["method"] != "egemaps"]
    # this experiment's egemaps cells are the same cells as the baseline experiment's: its egemaps rows stay
    keep = old[~(old["method"].isin([PRE, SCR, OLD]) & (old["corpus"] == "ravdess"))]
    merged = pd.concat([keep, mine[[c for c in old.columns if c in mine]]], ignore_index=True)
    write_atomic(main, lambda t: merged.to_csv(t, index=False, float_format="%.2f"))
    print("appended", len(mine), "rows to", main)
