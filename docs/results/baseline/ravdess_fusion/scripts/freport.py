"""Fusion report (issue 24, E24): pair the fusion grid folders' cells with the archived eGeMAPS and ComParE cells
(docs/results/baseline/cells/<corpus>.csv, same folds, seeds and label subsets) and with each other.
Writes docs/results/baseline/ravdess_fusion/{cells.csv,summary.csv,paired.csv,summary.md}; with --append replaces the
fusion-* rows of docs/results/baseline/summary.csv and rewrites summary.md from it."""
import sys
from pathlib import Path
import pandas as pd
from avpretext.common.io import write_atomic
from experiments.baseline import SUMMARY_COLUMNS, summary_markdown, summary_rows
from finetune.experiment import METRICS, collect, finished_cells, interval_text, paired_differences

WORK = Path("/work/runs/issue24")
ARCHIVE = Path("/work/main/docs/results/baseline")
OUT = ARCHIVE / "ravdess_fusion"
NAMES = {"pretrained": "pretrained-energy,acoustic+stats", "scratch": "scratch+stats"}


def method_of(fuse, init):
    return f"fusion-{fuse}-{NAMES[init]}"


cells = []
for folder in sorted((WORK / "exp").iterdir()):
    parts = folder.name.split("_")  # corpus_mode_init_fuse<set>
    if len(parts) != 4 or not parts[3].startswith("fuse") or not (folder / "cells").is_dir():
        continue
    table = collect(folder, finished_cells(folder))
    if len(table):
        cells.append(table.assign(corpus=parts[0], method=method_of(parts[3][4:], parts[2])))
cells = pd.concat(cells, ignore_index=True)
cells = cells[["corpus", "method"] + [c for c in cells if c not in ("corpus", "method")]]
OUT.mkdir(parents=True, exist_ok=True)
write_atomic(OUT / "cells.csv", lambda t: cells.to_csv(t, index=False, float_format="%.4f"))


def paired(treated, reference, name):
    """treated - reference (cells with a method column), matched on mode-free fraction, fold and seed."""
    both = pd.concat([treated.assign(method="treated"), reference.assign(method="reference")])
    d = paired_differences(both[["method", "fraction", "fold", "seed", *METRICS]], by="method",
                           treated="treated", baseline="reference")
    return d.assign(comparison=name)


summaries, pairs = [], []
for corpus, part in cells.groupby("corpus"):
    base = pd.read_csv(ARCHIVE / "cells" / f"{corpus}.csv")
    summaries.append(summary_rows(corpus, base[base["mode"] == "egemaps"], part.drop(columns="corpus")))
    means = base.groupby(["mode", "fraction"])["uar"].mean()
    for (method, mode), m in part.groupby(["method", "mode"]):
        for ref in ("egemaps", "compare"):
            d = paired(m, base[base["mode"] == ref], f"minus {ref}")
            pairs.append(d.assign(corpus=corpus, method=method, mode=mode))
        # minus the better baseline at each fraction (the one with the higher mean UAR over its 12 cells)
        for fraction, mf in m.groupby("fraction"):
            better = max(("egemaps", "compare"), key=lambda r: means.get((r, fraction), -1))
            d = paired(mf, base[(base["mode"] == better) & (base["fraction"] == fraction)], f"minus better ({better})")
            pairs.append(d.assign(corpus=corpus, method=method, mode=mode))
        if "pretrained" in method:
            scratch = part[(part["method"] == method.replace(NAMES["pretrained"], NAMES["scratch"]))
                           & (part["mode"] == mode)]
            if len(scratch):
                pairs.append(paired(m, scratch, "minus fused scratch").assign(corpus=corpus, method=method, mode=mode))
summary = pd.concat(summaries, ignore_index=True)
write_atomic(OUT / "summary.csv", lambda t: summary.to_csv(t, index=False, float_format="%.2f"))
pairs = pd.concat(pairs, ignore_index=True)
cols = ["corpus", "method", "mode", "comparison", "fraction", "pairs", "folds", "uar_diff", "uar_ci_low",
        "uar_ci_high", "uar_fold_ci_low", "uar_fold_ci_high"]
pairs = pairs[cols].sort_values(["corpus", "method", "mode", "comparison", "fraction"])
write_atomic(OUT / "paired.csv", lambda t: pairs.to_csv(t, index=False, float_format="%.4f"))
text = summary_markdown(summary) + "\nPaired differences (UAR points; 95% CI over matched cells / over fold means):\n\n"
text += "| corpus | method | mode | comparison | labels | pairs | diff | CI cells | CI folds |\n|---|---|---|---|---|---|---|---|---|\n"
for _, r in pairs.iterrows():
    text += (f"| {r['corpus']} | {r['method']} | {r['mode']} | {r['comparison']} | {r['fraction']:.0%} | "
             f"{int(r['pairs'])} | {100 * r['uar_diff']:+.1f} | "
             f"{interval_text(r['uar_ci_low'], r['uar_ci_high'], int(r['pairs']))} | "
             f"{interval_text(r['uar_fold_ci_low'], r['uar_fold_ci_high'], int(r['folds']))} |\n")
write_atomic(OUT / "summary.md", lambda t: t.write_text(text))
print(text)
if "--append" in sys.argv:
    main = ARCHIVE / "summary.csv"
    old = pd.read_csv(main)
    mine = summary[summary["method"] != "egemaps"]
    keep = old[~old["method"].str.startswith("fusion-")]
    merged = pd.concat([keep, mine[[c for c in old.columns if c in mine]]], ignore_index=True)
    write_atomic(main, lambda t: merged.to_csv(t, index=False, float_format="%.2f"))
    # summary.md: the existing lines kept as they are (rounded from the unrounded values), the fusion rows
    # replaced, the table re-sorted as summary_markdown sorts it (corpus, labels, UAR descending)
    lines = (ARCHIVE / "summary.md").read_text().splitlines()
    head, rows = lines[:2], [l for l in lines[2:] if l.startswith("| ") and "| fusion-" not in l]
    rows += summary_markdown(mine).splitlines()[2:]
    key = lambda l: (l.split("|")[1].strip(), float(l.split("|")[2].strip(" %")), -float(l.split("|")[6]))
    write_atomic(ARCHIVE / "summary.md", lambda t: t.write_text("\n".join(head + sorted(rows, key=key)) + "\n"))
    print("appended", len(mine), "rows to", main)
