"""A Markdown report (with PNG plots) of one pipeline run: pseudo-labels, pretraining, fine-tuning.

    python -m avpretext.pipeline.report --label DIR --pretrain RUN --experiment EXP --out REPORT_DIR

Reads only the files the stages write: ``label_stats.json`` (``data_prep label``), ``metrics.jsonl``
(``pretext/train.py``) and ``summary.csv``/``summary.md``/``cells.csv`` (``finetune/experiment.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from avpretext.common.cli import CommandParser
from avpretext.common.io import write_atomic
from avpretext.common.plots import pyplot, save_figure
from data_prep.label.stage import task_specific_entries
from data_prep.segments import STATS_FILE
from finetune.baseline import BASELINE_MODES
from pretext.config import RUN_CONFIG_FILE


def plot_label_counts(stats: dict, path: Path) -> Path:
    """One bar chart per task: segments per pseudo-label class."""
    plt = pyplot()
    tasks = stats["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks) + 1, 3), squeeze=False)
    for ax, (name, info) in zip(axes[0], tasks.items()):
        counts = info["class_counts"]
        ax.bar(list(counts), list(counts.values()), color="tab:blue")
        ax.set_title(f"{name} ({info['labelled']} labelled)")
        ax.tick_params(axis="x", rotation=45)
    axes[0][0].set_ylabel("segments")
    return save_figure(fig, path, dpi=100)


def pretraining_curves(metrics_file: Path) -> pd.DataFrame:
    """``metrics.jsonl`` as a table (one row per logged step and split)."""
    return pd.DataFrame([json.loads(line) for line in open(metrics_file, encoding="utf-8")])


def plot_pretraining(records: pd.DataFrame, tasks: list[str], path: Path) -> Path:
    """Loss and UAR per task against the step, train and validation."""
    plt = pyplot()
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.4 * len(tasks) + 1, 5.5), squeeze=False, sharex=True)
    for column, task in enumerate(tasks):
        for row, metric in enumerate(("loss", "uar")):
            ax = axes[row][column]
            for split, style in (("train", "-"), ("val", "o--")):
                part = records[records["split"] == split]
                key = f"{task}/{metric}"
                if key in part and part[key].notna().any():
                    ax.plot(part["step"], part[key], style, label=split)
            ax.set_title(f"{task} {metric}")
            ax.grid(alpha=0.3)
        axes[1][column].set_xlabel("step")
    axes[0][0].legend()
    return save_figure(fig, path, dpi=100)


def plot_finetune(summary: pd.DataFrame, path: Path) -> Path:
    """Test UAR (mean +- std over cells) of scratch vs pretrained, per mode and label fraction, beside the
    eGeMAPS baseline's at the same fraction (when the experiment ran it)."""
    plt = pyplot()
    percent = (summary["fraction"] * 100).round().astype(int).astype(str) + "%"
    groups = summary.assign(x=summary["mode"] + " " + percent, at=percent)
    neural = groups[~groups["mode"].isin(BASELINE_MODES)]
    labels = list(dict.fromkeys(neural["x"])) or list(dict.fromkeys(groups["x"]))
    baseline = groups[groups["mode"] == "egemaps"].set_index("at")
    bars = [("scratch", neural[neural["init"] == "scratch"].set_index("x")),
            ("pretrained", neural[neural["init"] == "pretrained"].set_index("x"))]
    if len(baseline) and len(neural):  # at each group's label fraction
        bars.append(("egemaps + LR", baseline.reindex([x.split(" ", 1)[1] for x in labels]).set_axis(labels)))
    fig, ax = plt.subplots(figsize=(1.6 * len(labels) + 2, 3.5))
    width = 0.8 / len(bars)
    for k, (name, rows) in enumerate(bars):
        rows = rows.reindex(labels)
        ax.bar([i + (k - (len(bars) - 1) / 2) * width for i in range(len(labels))], rows["uar_mean"] * 100, width,
               yerr=rows["uar_std"].fillna(0) * 100, capsize=3, label=name)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("test UAR (%)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, dpi=100)


def build_report(label_dir: Path, pretrain_run: Path, experiment: Path, out: Path, title: str = "avpretext run",
                 timings: dict | None = None, notes: list[str] | None = None) -> Path:
    """Write ``out/report.md`` and its plots; returns the Markdown file."""
    out.mkdir(parents=True, exist_ok=True)
    stats = json.loads((label_dir / STATS_FILE).read_text())
    lines = [f"# {title}", ""]
    if notes:
        lines += [*notes, ""]
    if timings:
        lines += ["| stage | seconds |", "|---|---|", *[f"| {k} | {v:.0f} |" for k, v in timings.items()], ""]

    lines += ["## Pseudo-labels", "",
              f"{stats['media']} media items, {stats['segments']} segments "
              f"({stats['speech_hours_in_segments'] * 60:.1f} min of speech).", "",
              "| task | labelled | classes (segments) | median group |", "|---|---|---|---|"]
    for name, info in stats["tasks"].items():
        counts = ", ".join(f"{k} {v}" for k, v in info["class_counts"].items())
        lines.append(f"| {name} | {info['labelled']} ({info['coverage']:.0%}) | {counts} | {info.get('group', '')} |")
    for name, info in stats["tasks"].items():  # each task's own statistics, e.g. the AU rules' frame shares
        for key, value in task_specific_entries(info).items():
            if isinstance(value, dict) and value and all(isinstance(v, float) for v in value.values()):
                lines += ["", f"{name} {key.replace('_', ' ')}: " + ", ".join(f"{k} {v:.1%}" for k, v in value.items())]
    lines += [*[f"\n> warning: {w}" for w in stats.get("warnings", [])], "",
              f"![pseudo-labels]({plot_label_counts(stats, out / 'pseudo_labels.png').name})", ""]

    records = pretraining_curves(pretrain_run / "metrics.jsonl")
    config = json.loads((pretrain_run / RUN_CONFIG_FILE).read_text())
    tasks = [column[: -len("/loss")] for column in records.columns if column.endswith("/loss")]
    last = {split: records[records["split"] == split].iloc[-1] for split in ("train", "val")
            if (records["split"] == split).any()}
    lines += ["## Pretext pretraining", "",
              f"Encoder `{config['encoder']}` {config['encoder_options']}, tasks `{config['tasks']}`, "
              f"{config['max_steps']} steps of batch {config['batch_size']}.", "",
              "| task | " + " | ".join(f"{s} loss | {s} UAR" for s in last) + " |",
              "|---|" + "---|---|" * len(last)]
    for task in tasks:
        cells = " | ".join(f"{r[f'{task}/loss']:.3f} | {r[f'{task}/uar']:.3f}" for r in last.values())
        lines.append(f"| {task} | {cells} |")
    lines += ["", f"![pretraining]({plot_pretraining(records, tasks, out / 'pretraining.png').name})", ""]

    summary = pd.read_csv(experiment / "summary.csv")
    lines += ["## Fine-tuning: pretrained vs scratch (and the eGeMAPS baseline)", "",
              (experiment / "summary.md").read_text(), "",
              f"![fine-tuning]({plot_finetune(summary, out / 'finetune.png').name})", ""]
    report = out / "report.md"
    write_atomic(report, lambda tmp: tmp.write_text("\n".join(lines)))
    return report


def main(argv=None) -> int:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", type=Path, required=True, help="a data_prep label output folder")
    parser.add_argument("--pretrain", type=Path, required=True, help="a pretext/train.py run folder")
    parser.add_argument("--experiment", type=Path, required=True, help="a finetune/experiment.py folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md and its plots")
    args = parser.parse_args(argv)
    print(build_report(args.label, args.pretrain, args.experiment, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
