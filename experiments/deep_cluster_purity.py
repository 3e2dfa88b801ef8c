"""Do DeepEmoCluster's latent clusters have emotional dependencies on RAVDESS? Purity and NMI of each round's
cluster assignments against the emotion labels, beside k-means of reference features.

    .venv/bin/python -m experiments.deep_cluster_purity --labels DIR --run RUN --out docs/results/deep_cluster
        [--k 8] [--seeds 0,1,2]

``DIR`` is a ``data_prep label`` folder of RAVDESS audio labelled with the cluster task (the table's media ids
keep RAVDESS's file names, ``03-01-EE-...``, EE the emotion); ``RUN`` a pretraining run over it with
``--recluster-every`` (:mod:`pretext.deep_cluster`: ``RUN/clusters/round_NNN.parquet``). Training never sees
the emotions; they are read here only to score the clusters. Scored with the same clustering as the rounds
(:func:`pretext.tasks.cluster.cluster_table` with the label config's cluster settings: standardised per
speaker, PCA, k-means), each over ``--seeds`` k-means seeds (random encoders: one per seed as well):

* round 0: the label stage's clusters of hand-made descriptors (the table's ``cluster_label``);
* rounds 1..R: the run's saved assignments (:func:`pretext.deep_cluster.round_scores`);
* a random encoder: the run's architecture with fresh weights, its pooled embeddings of the same segments;
* eGeMAPS: the 88 openSMILE functionals (:mod:`finetune.opensmile_features`) of each segment's whole file
  (the extraction's 16 kHz copy; a RAVDESS clip is one utterance, the segment its speech span).

Writes ``OUT/purity.csv`` (one row per source and seed), ``OUT/purity_summary.csv``, ``OUT/purity.png``
and ``OUT/assignments.csv`` (each segment's emotion and cluster per round).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avpretext.common.cli import CommandParser
from avpretext.common.io import write_atomic
from avpretext.common.plots import pyplot, save_figure
from data_prep.segments import load_segments
from encoders import build_encoder
from finetune.opensmile_features import Functionals
from pretext.deep_cluster import cluster_nmi, cluster_purity, ROUNDS_DIR, round_scores
from pretext.recluster import embed_with
from pretext.tasks.cluster import cluster_table, ClusterConfig

RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
                    "07": "disgust", "08": "surprised"}


def ravdess_emotion(media_ids: pd.Series) -> pd.Series:
    """The emotion of each RAVDESS media id (``..._03-01-EE-II-SS-RR-AA.flac-<hash>``); "" when not a RAVDESS
    name."""
    code = media_ids.astype(str).str.extract(r"03-01-(\d\d)-\d\d-\d\d-\d\d-\d\d")[0]
    return code.map(RAVDESS_EMOTIONS).fillna("")


def score(source: str, seed: int, labels: np.ndarray, emotions: pd.Series) -> dict:
    return {"source": source, "seed": seed, "segments": int(len(labels)),
            "purity": cluster_purity(labels, emotions), "nmi": cluster_nmi(labels, emotions),
            "purity_chance": cluster_purity(np.zeros(len(labels), dtype=np.int64), emotions)}


def reference_rows(table: pd.DataFrame, emotions: pd.Series, cfg, run: Path, seeds: list[int]) -> list[dict]:
    """Scores of k-means on a random encoder's embeddings and on eGeMAPS functionals (one row per seed)."""
    valid = table["cluster_mask"].astype(bool)
    settings = json.loads((run / "config.json").read_text())
    egemaps, skipped = Functionals("egemaps").compute([str(p) for p in table["audio_path"]])
    if skipped:
        raise ValueError(f"eGeMAPS: unreadable files {skipped[:3]}")
    rows = []
    for seed in seeds:
        seeded = dataclasses.replace(cfg, seed=seed)
        clustered, _ = cluster_table(table, egemaps.astype(np.float64), valid, seeded)
        rows.append(score("eGeMAPS functionals", seed, clustered["cluster_label"][valid].to_numpy(), emotions[valid]))
        torch.manual_seed(seed)
        encoder = build_encoder(settings["encoder"], **settings["encoder_options"]).eval()
        features = embed_with(encoder, table, 32)
        clustered, _ = cluster_table(table, features, valid, seeded)
        rows.append(score("random encoder", seed, clustered["cluster_label"][valid].to_numpy(), emotions[valid]))
    return rows


def assignments(table: pd.DataFrame, emotions: pd.Series, run: Path) -> pd.DataFrame:
    """Per segment: id, speaker, emotion, and its cluster in round 0 and in each saved round (-1: masked)."""
    frame = pd.DataFrame({"segment_id": table["segment_id"], "speaker": table["speaker"], "emotion": emotions,
                          "round_000": table["cluster_label"].where(table["cluster_mask"].astype(bool), -1)})
    for path in sorted((run / ROUNDS_DIR).glob("round_*.parquet")):
        saved = pd.read_parquet(path).set_index("segment_id")
        labels = saved["cluster_label"].where(saved["cluster_mask"], -1)
        frame[path.stem] = labels.reindex(frame["segment_id"]).fillna(-1).astype(int).to_numpy()
    return frame


def plot(summary: pd.DataFrame, path: Path) -> None:
    plt = pyplot()
    rounds = summary[summary["source"].str.startswith("round")]
    refs = summary[~summary["source"].str.startswith("round")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("purity", "nmi")):
        ax.plot(rounds["epoch"], rounds[metric], "o-", color="k", label="rounds (round 0: descriptors)")
        for (_, ref), colour in zip(refs.iterrows(), ("tab:blue", "tab:orange", "tab:green")):
            ax.axhline(ref[metric], color=colour, ls="--", label=ref["source"])
        if metric == "purity":
            ax.axhline(rounds["purity_chance"].iloc[0], color="grey", ls=":", label="one cluster")
        ax.set_ylim(bottom=0)
        ax.set_xticks(rounds["epoch"].astype(int).tolist())
        ax.set_xlabel("epochs of pretraining before the round")
        ax.set_ylabel(f"{metric} against the emotion (k = 8)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    save_figure(fig, path, dpi=120)


def main(argv=None) -> int:
    parser = CommandParser(prog="experiments.deep_cluster_purity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", required=True, help="data_prep label folder (RAVDESS, cluster task)")
    parser.add_argument("--run", required=True, help="pretraining run folder with clusters/round_NNN.*")
    parser.add_argument("--out", required=True, help="folder for purity.csv, purity_summary.csv, purity.png")
    parser.add_argument("--seeds", default="0,1,2", help="k-means (and random encoder) seeds of the references")
    args = parser.parse_args(argv)
    labels, run, out = Path(args.labels), Path(args.run), Path(args.out)
    table = load_segments(labels)
    emotions = ravdess_emotion(table["media_id"])
    if (emotions == "").any():
        print(f"{labels}: {int((emotions == '').sum())} segments without a RAVDESS name", file=sys.stderr)
        return 2
    cfg = ClusterConfig(**json.loads((labels / "label_config.json").read_text())["cluster"])
    seeds = [int(s) for s in args.seeds.split(",")]
    mask = table["cluster_mask"].astype(bool)
    rows = [score("round 0 (descriptors)", cfg.seed, table["cluster_label"][mask].to_numpy(), emotions[mask])
            | {"round": 0, "epoch": 0}]
    rounds = round_scores(run, pd.Series(emotions.to_numpy(), index=table["segment_id"]))
    rows += [{"source": f"round {r['round']}", "seed": cfg.seed + r["round"], **r} for r in rounds.to_dict("records")]
    rows += reference_rows(table, emotions, cfg, run, seeds)
    cells = pd.DataFrame(rows).astype({"round": "Int64", "epoch": "Int64"})  # references have no round
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "assignments.csv", lambda tmp: assignments(table, emotions, run).to_csv(tmp, index=False))
    write_atomic(out / "purity.csv", lambda tmp: cells.to_csv(tmp, index=False, float_format="%.4f"))
    summary = (cells.groupby("source", sort=False)
               .agg(round=("round", "first"), epoch=("epoch", "first"), seeds=("seed", "count"),
                    segments=("segments", "first"), purity=("purity", "mean"), purity_min=("purity", "min"),
                    purity_max=("purity", "max"), nmi=("nmi", "mean"), nmi_min=("nmi", "min"),
                    nmi_max=("nmi", "max"), purity_chance=("purity_chance", "first")).reset_index())
    write_atomic(out / "purity_summary.csv", lambda tmp: summary.to_csv(tmp, index=False, float_format="%.4f"))
    plot(summary, out / "purity.png")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
