"""How ``data_prep audit`` shows its report: the console summary, Markdown with tables, and confusion PNGs.

The scores themselves come from :mod:`data_prep.label.audit`; this module only renders its report dict.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from avpretext.common.plots import pyplot, save_figure
from data_prep import store

AUDIT_JSON, AUDIT_MD = "audit.json", "audit.md"


def format_audit(report: dict) -> str:
    """The console summary: one line per task."""
    lines = [f"audit of {report['segments']} {report['unit'].split(' of ')[0]} from {report['items_matched']} "
             f"items with references ({report['references_unmatched_count']} references unmatched)"]
    for name, e in report["tasks"].items():
        if e["meaning"] == "emotion":
            recall = ", ".join(f"{c} {r:.0%}" for c, r in e["recall"].items())
            lines.append(f"  {name} (emotion): accuracy {e['accuracy']:.1%}, UAR {e['uar']:.1%} over "
                         f"{e['n_shared']} segments of {len(e['shared_classes'])} shared classes; recall: {recall}")
            if e.get("labelling"):
                lines.append(f"    labelled by: {e['labelling']}")
        elif not e["segments"]:
            lines.append(f"  {name}: no segment has both a label and a reference (e.g. energy on video-only items)")
        elif e["meaning"] == "arousal":
            lines.append(f"  {name} (arousal): AUC {e['auc']:.3f}, accuracy {e['accuracy']:.1%} "
                         f"({e['high']} high / {e['low']} low segments)")
        else:
            lines.append(f"  {name}: no reference meaning; {e['segments']} segments tabulated")
    return "\n".join(lines)


def write_audit(out: Path, report: dict, table: pd.DataFrame) -> None:
    """``audit.md``, ``audit.json``, one confusion PNG per emotion task and ``audited_segments.csv`` into ``out``
    (each written atomically); records each PNG's name in its task's entry of ``report``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, entry in report["tasks"].items():
        if entry["meaning"] == "emotion" and entry["confusion"]["rows"]:
            png = out / f"confusion_{_safe(name)}.png"
            store.write_atomic(png, lambda tmp, e=entry, n=name: plot_table(e["confusion"], tmp, f"{n}: pseudo-label"
                                                                             " vs reference emotion"))
            entry["confusion_png"] = png.name
    store.write_json_atomic(out / AUDIT_JSON, report)
    store.write_atomic(out / AUDIT_MD, lambda tmp: tmp.write_text(audit_markdown(report), encoding="utf-8"))
    columns = [c for c in ("segment_id", "media_id", "start", "end", "ref_speaker", "ref_emotion", "ref_arousal")
               if c in table] + [c for c in table.columns if c.endswith(("_label", "_mask", "_class"))]
    store.write_atomic(out / "audited_segments.csv", lambda tmp: table[columns].to_csv(tmp, index=False))


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def plot_table(table: dict, path: Path, title: str) -> Path:
    """A row-normalised heat map (counts annotated) of ``{"rows", "columns", "counts"}``; rows may differ
    from columns (reference emotions that no task class names, e.g. contempt)."""
    plt = pyplot()
    counts = np.asarray(table["counts"], dtype=np.float64)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(2.2 + 0.7 * len(table["columns"]), 1.6 + 0.5 * len(table["rows"])))
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(table["columns"])), table["columns"], rotation=45, ha="right")
    ax.set_yticks(range(len(table["rows"])), table["rows"])
    ax.set_xlabel("pseudo-label")
    ax.set_ylabel("reference")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="share of the reference class")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def _markdown_table(table: dict) -> list[str]:
    lines = ["| reference \\ pseudo-label | " + " | ".join(table["columns"]) + " |",
             "|---" * (len(table["columns"]) + 1) + "|"]
    lines += [f"| {r} | " + " | ".join(str(int(v)) for v in counts) + " |"
              for r, counts in zip(table["rows"], table["counts"])]
    return lines


def audit_markdown(report: dict) -> str:
    """The audit as Markdown: per task its scores, tables and diagnostics."""
    lines = ["# Label audit", "", f"- extraction: `{report['extract_dir']}`; references: `{report['references']}`",
             f"- unit: {report['unit']}; {report['segments']} segments from {report['items_matched']} items; "
             f"{report['references_unmatched_count']} references unmatched; label config {report['config_hash']}",
             ""]
    for name, e in report["tasks"].items():
        lines.append(f"## {name}")
        if not e["segments"]:
            lines += ["No segment has both a label and a reference (e.g. energy on video-only items).", ""]
        elif e["meaning"] == "emotion":
            if e.get("labelling"):
                lines += [f"Labelled by: {e['labelling']}", ""]
            lines += [f"Accuracy **{e['accuracy']:.1%}**, UAR **{e['uar']:.1%}** over {e['n_shared']} segments "
                      f"of the shared classes {', '.join(e['shared_classes'])} (chance UAR "
                      f"{1 / max(len(e['shared_classes']), 1):.1%}); {e['unlabelled_segments']} segments without "
                      f"a label (too little face).", "",
                      "Recall per class: " + ", ".join(f"{c} {r:.0%}" for c, r in e["recall"].items()), "",
                      *_markdown_table(e["confusion"]), ""]
            if "confusion_png" in e:
                lines += [f"![confusion]({e['confusion_png']})", ""]
            lines += ["| speaker | segments | accuracy |", "|---|---|---|"]
            lines += [f"| {s} | {v['n']} | {v['accuracy']:.0%} |" for s, v in e["per_speaker"].items()]
            lines.append("")
        elif e["meaning"] == "arousal":
            lines += [f"AUC **{e['auc']:.3f}** of `{name}`'s score, label accuracy **{e['accuracy']:.1%}** against "
                      f"arousal ({e['high']} high, {e['low']} low segments; 0.5 = no agreement).", ""]
            if "high_share_by_emotion" in e:
                lines += ["Share labelled high per reference emotion: " + ", ".join(
                    f"{k} {v:.0%}" for k, v in e["high_share_by_emotion"].items()), ""]
        else:
            lines += [f"No reference meaning (its classes are not emotions or arousal); how the references "
                      f"({e['reference']}) spread over its classes:", "", *_markdown_table(e["table"]), ""]
        if e.get("diagnostics"):
            columns = sorted({k for v in e["diagnostics"].values() for k in v})
            lines += [f"Diagnostics of `{name}` (mean per reference class):", "",
                      "| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
            for key, values in e["diagnostics"].items():
                lines.append(f"| {key} | " + " | ".join("" if values.get(c) is None else f"{values[c]:.2f}"
                                                       for c in columns) + " |")
            lines.append("")
    return "\n".join(lines)
