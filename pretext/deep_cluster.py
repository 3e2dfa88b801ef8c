"""The DeepEmoCluster loop inside pretraining: the cluster task's pseudo-classes re-made from the encoder's own
representations as training goes.

DeepEmoCluster [0], after DeepCluster [1], alternates k-means on the network's own features with training the
network to predict the cluster indices. With ``--recluster-every N`` pretraining does that: at the end of every
N-th epoch the training and validation segments that the cluster task labels are embedded by the encoder being
trained (pooled embeddings of whole segments, eval mode), re-clustered with the cluster task's own settings
(:func:`pretext.tasks.cluster.cluster_table`: standardised within groups, PCA, k-means, ``k`` from the label
config; seeded by the config's seed plus the round), the task's labels are replaced by the new assignments, and
the cluster head is re-initialised with its optimizer state, as DeepCluster does: cluster indices of one round
mean nothing in the next. Round 0 is the label stage's clustering of hand-made descriptors.

Each round writes ``RUN/clusters/round_NNN.parquet`` (``segment_id``, ``cluster_label``, ``cluster_mask``) and
``round_NNN.json`` (the epoch it was made after, cluster sizes, inertia, and, when the segment table has an
``emotion`` column, the clusters' purity against it: the share of segments in their cluster's most frequent
emotion, the paper's "latent clusters have emotional dependencies", and their normalised mutual information).
A resumed run re-applies the newest round made at or before its checkpoint's epoch, so it trains on the labels
the interrupted run had. :func:`round_scores` scores a run's saved rounds against any labels afterwards.

Fine-tuning's cluster loss (:mod:`finetune.auxiliary`, DeepEmoCluster's semi-supervised form) runs the same
rounds on the SER model's utterance embeddings of a split's training rows.

Data-parallel runs (``accelerate launch``) make the round one process would: every process embeds its share of
the rows (every P-th batch), the main process gathers the embeddings of all of them, clusters and writes the
round, and sends its assignments to every process, so all processes train on the same pseudo-label for each
row (the labels live in the dataset, indexed by row, whichever process's shard reads it); every process then
re-initialises the head from the same seed, so DDP's copies of it stay equal.

[0] W.-C. Lin, K. Sridhar and C. Busso, "DeepEmoCluster: a semi-supervised framework for latent cluster
    representation of speech emotions", ICASSP 2021.
[1] M. Caron, P. Bojanowski, A. Joulin and M. Douze, "Deep clustering for unsupervised learning of visual
    features", ECCV 2018.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avpretext.common.io import write_atomic, write_json_atomic
from pretext.recluster import embed_with
from pretext.tasks.cluster import cluster_table

TASK = "cluster"
ROUNDS_DIR = "clusters"
PURITY_COLUMN = "emotion"
_ROUND_FILE = re.compile(r"round_(\d{3})\.json$")


def check_recluster(every: int, task_names) -> None:
    """ValueError naming the option when re-clustering cannot run."""
    if every < 0:
        raise ValueError(f"--recluster-every {every}: must be >= 0 (0: off)")
    if every and TASK not in task_names:
        raise ValueError(f"--recluster-every {every} re-makes the {TASK} task's labels: add {TASK} to --tasks")


def _known(labels: np.ndarray, classes: pd.Series) -> pd.DataFrame | None:
    """(cluster, cls) of the segments whose class is known ("" or NaN: unknown); None without two classes."""
    classes = pd.Series(classes).reset_index(drop=True)
    known = classes.notna().to_numpy() & (classes.astype(str).str.strip() != "").to_numpy()
    if len(set(classes[known])) < 2:
        return None
    return pd.DataFrame({"cluster": np.asarray(labels)[known], "cls": classes[known].astype(str).to_numpy()})


def cluster_purity(labels: np.ndarray, classes: pd.Series) -> float | None:
    """Share of segments whose class is their cluster's most frequent one (None without two known classes).

    labels: (N,) cluster index per segment; classes: (N,) e.g. emotion names ("" or NaN: unknown, left out).
    """
    frame = _known(labels, classes)
    if frame is None:
        return None
    majority = frame.groupby("cluster")["cls"].agg(lambda c: c.value_counts().iloc[0]).sum()
    return float(majority / len(frame))


def cluster_nmi(labels: np.ndarray, classes: pd.Series) -> float | None:
    """Normalised mutual information (arithmetic mean of the entropies) between clusters and known classes,
    0 (independent) to 1 (the same partition); None without two known classes. Shapes as
    :func:`cluster_purity`. Unlike purity it does not grow with the number of clusters."""
    from sklearn.metrics import normalized_mutual_info_score  # heavy (seconds); only scoring rounds needs it

    frame = _known(labels, classes)
    return None if frame is None else float(normalized_mutual_info_score(frame["cls"], frame["cluster"]))


def round_scores(run: str | Path, classes: pd.Series) -> pd.DataFrame:
    """Purity and NMI of every saved round of a run against known classes.

    Args:
        run: a pretraining run folder (``RUN/clusters/round_NNN.*``) or a fine-tuning split folder.
        classes: a class (e.g. emotion) per ``segment_id`` (the index); segments not in it count as unknown.

    Returns:
        One row per round: ``round, epoch, segments`` (clustered and with a known class), ``purity``,
        ``purity_chance`` (one cluster: the majority class's share), ``nmi``.
    """
    folder = Path(run) / ROUNDS_DIR
    rows = []
    for path in sorted(folder.glob("round_*.json")):
        facts = json.loads(path.read_text())
        rounds = pd.read_parquet(path.with_suffix(".parquet"))
        rounds = rounds[rounds["cluster_mask"].to_numpy(bool)]
        known = classes.reindex(rounds["segment_id"]).reset_index(drop=True)
        labels = rounds["cluster_label"].to_numpy()
        rows.append({"round": facts["round"], "epoch": facts["epoch"],
                     "segments": int((known.notna() & (known.astype(str) != "")).sum()),
                     "purity": cluster_purity(labels, known),
                     "purity_chance": cluster_purity(np.zeros(len(labels), dtype=np.int64), known),
                     "nmi": cluster_nmi(labels, known)})
    if not rows:
        raise ValueError(f"{folder}: no round_NNN.json (a run with --recluster-every, or fine-tuning with "
                         "--cluster-weight)")
    return pd.DataFrame(rows)


class DeepClusterLoop:
    """Re-clusters a run's ``cluster`` task every ``every`` epochs (see the module docstring).

    Pretraining uses the defaults; fine-tuning (:mod:`finetune.auxiliary`, DeepEmoCluster's semi-supervised
    form) passes its own ``embed`` (the SER model's utterance embedding) and ``head`` (its auxiliary cluster
    head), and makes round 0 itself before the first epoch (:meth:`run_round`).

    Args:
        every: epochs between rounds (> 0).
        cfg: the cluster task's config (a :class:`pretext.tasks.cluster.ClusterConfig`, as labelled).
        datasets: the run's :class:`avpretext.common.batches.SegmentDataset` objects whose ``cluster`` labels
            and masks are replaced (training, validation); their tables must hold ``segment_id`` and either
            ``cluster_valid`` (which segments may be clustered) or ``cluster_mask``.
        out: the run folder (rounds go to ``out/clusters``).
        seed: the run's seed (head re-initialisation).
        batch_size: segments embedded at once.
        embed: ``(model, table, device) -> (N, D)`` embeddings of the table's rows by the unwrapped model
            (default: its encoder's pooled embedding of each whole segment, eval mode).
        head: ``model -> module``, the cluster head to re-initialise (default ``model.heads["cluster"]``).
    """

    def __init__(self, every: int, cfg, datasets: list, out: Path, seed: int, batch_size: int = 16,
                 embed=None, head=None):
        self.every, self.cfg, self.datasets = every, cfg, datasets
        self.folder = Path(out) / ROUNDS_DIR
        self.seed, self.batch_size = seed, batch_size
        self.embed = embed or self._embed_segments
        self.head = head or (lambda model: model.heads[TASK])
        self.table = pd.concat([d.table for d in datasets], ignore_index=True)

    def due(self, epoch: int) -> bool:
        """Whether a round follows ``epoch`` completed epochs."""
        return epoch > 0 and epoch % self.every == 0

    def after_epoch(self, accelerator, model, optimizer, epoch: int) -> dict | None:
        """At a due epoch: re-cluster (main process), apply the round everywhere, re-initialise the head.
        Returns the round's facts (None when no round is due)."""
        if not self.due(epoch):
            return None
        return self.run_round(accelerator, model, optimizer, epoch, epoch // self.every)

    def run_round(self, accelerator, model, optimizer, epoch: int, number: int) -> dict:
        """Round ``number`` after ``epoch`` completed epochs: every process embeds its share of the rows, the
        main process clusters all of them and writes the round, every process applies the main process's
        assignments and re-initialises the head alike. Returns the round's facts."""
        from accelerate.utils import broadcast_object_list  # loaded by whoever made the accelerator already

        unwrapped = accelerator.unwrap_model(model)
        embedded = self._embed_all(accelerator, unwrapped)
        made = [self._make_round(embedded, number, epoch) if accelerator.is_main_process else None]
        labels, mask, facts = broadcast_object_list(made)[0]  # the main process's round, on every process
        self._set_labels(labels, mask)
        self._reset_head(self.head(unwrapped), optimizer, number)
        return facts

    def clear(self) -> None:
        """Remove the rounds of an earlier run in this folder (a fresh run must not re-apply them)."""
        for path in sorted(self.folder.glob("round_*.json")) + sorted(self.folder.glob("round_*.parquet")):
            path.unlink(missing_ok=True)

    def resume(self, epoch: int) -> dict | None:
        """Re-apply the newest round made after at most ``epoch`` epochs (a resumed run's labels). The head
        needs no reset: the checkpoint holds its weights."""
        made = [(json.loads(path.read_text())["epoch"], int(_ROUND_FILE.search(path.name).group(1)))
                for path in sorted(self.folder.glob("round_*.json"))]
        usable = [number for made_after, number in made if made_after <= epoch]
        return self._apply(max(usable)) if usable else None

    def _embed_segments(self, model, table: pd.DataFrame, device) -> np.ndarray:
        encoder = model.encoder
        was_training = encoder.training
        encoder.eval()
        try:
            return embed_with(encoder, table, self.batch_size, device)
        finally:
            encoder.train(was_training)

    def _valid(self) -> np.ndarray:
        """(N,) bool: the rows that may be clustered."""
        table = self.table
        return (table["cluster_valid"] if "cluster_valid" in table else table["cluster_mask"]).to_numpy(bool)

    def _embed_all(self, accelerator, model) -> np.ndarray | None:
        """``(V, D)`` embeddings of the V clusterable rows of every dataset, in table order, on the main process
        (None on the others).

        Every process embeds every P-th batch of ``batch_size`` rows (all of them in one process) and the main
        process gathers them: each row is embedded once, by the same weights on every process (DDP keeps them
        equal), so the k-means below sees every training row, not one process's shard.
        """
        from accelerate.utils import gather_object

        rows = np.flatnonzero(self._valid())
        batches = [rows[lo:lo + self.batch_size] for lo in range(0, len(rows), self.batch_size)]
        processes = accelerator.num_processes
        mine = batches[accelerator.process_index::processes]
        part = self.embed(model, self.table.iloc[np.concatenate(mine) if mine else []], accelerator.device)
        parts = gather_object([part])  # one array per process, in process order
        if not accelerator.is_main_process:
            return None
        order = [np.concatenate(batches[rank::processes]) for rank in range(processes) if batches[rank::processes]]
        if not order:
            return np.zeros((0, 1), dtype=np.float32)
        embedded = np.empty((len(rows), parts[0].shape[1]), dtype=np.float32)
        embedded[np.searchsorted(rows, np.concatenate(order))] = np.concatenate([p for p in parts if len(p)])
        return embedded

    def _make_round(self, embedded: np.ndarray, number: int, epoch: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """Cluster ``embedded`` (:meth:`_embed_all`), write the round; (labels (N,), mask (N,), facts)."""
        table, valid = self.table, self._valid()
        features = np.zeros((len(table), embedded.shape[1] if embedded.size else 1), dtype=np.float32)
        features[valid] = embedded
        cfg = dataclasses.replace(self.cfg, seed=self.cfg.seed + number)
        clustered, facts = cluster_table(table, features, pd.Series(valid), cfg)
        labels, mask = clustered["cluster_label"].to_numpy(), clustered["cluster_mask"].to_numpy(bool)
        facts = {"round": number, "epoch": epoch, **{k: v for k, v in facts.items() if k != "classes"}}
        if PURITY_COLUMN in table:
            facts["purity"] = cluster_purity(labels[mask], table[PURITY_COLUMN][mask])
            facts["nmi"] = cluster_nmi(labels[mask], table[PURITY_COLUMN][mask])
            facts["purity_chance"] = cluster_purity(np.zeros(int(mask.sum()), dtype=np.int64),
                                                    table[PURITY_COLUMN][mask])  # one cluster: the majority share
        rounds = pd.DataFrame({"segment_id": table["segment_id"].to_numpy(), "cluster_label": labels,
                               "cluster_mask": mask})
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / f"round_{number:03d}.parquet", lambda tmp: rounds.to_parquet(tmp, index=False))
        facts_path = self.folder / f"round_{number:03d}.json"
        write_json_atomic(facts_path, facts)  # last: it marks the round as made
        return labels, mask, json.loads(facts_path.read_text())  # as resume() reads them

    def _apply(self, number: int) -> dict:
        """Set the labels of saved round ``number``; its facts."""
        path = self.folder / f"round_{number:03d}.parquet"
        rounds = pd.read_parquet(path)
        if rounds["segment_id"].tolist() != self.table["segment_id"].tolist():
            raise ValueError(f"{path}: its segments are not this run's (another --data or split); use a new --out")
        self._set_labels(rounds["cluster_label"].to_numpy(), rounds["cluster_mask"].to_numpy(bool))
        return json.loads((self.folder / f"round_{number:03d}.json").read_text())

    def _set_labels(self, labels: np.ndarray, mask: np.ndarray) -> None:
        """The datasets' cluster labels and masks from (N,) arrays over :attr:`table`'s rows (datasets in order)."""
        start = 0
        for dataset in self.datasets:
            size = len(dataset.table)
            if TASK in dataset.labels:
                dataset.labels[TASK] = torch.tensor(np.clip(np.asarray(labels[start:start + size], np.int64), 0, None))
                dataset.masks[TASK] = torch.tensor(np.asarray(mask[start:start + size], bool))
            start += size

    def _reset_head(self, head: torch.nn.Module, optimizer, number: int) -> None:
        """Fresh weights for the cluster head (the same on every process) and no optimizer state for them."""
        # A GPU head draws its weights from its device's generator: fork that one too, so the training's
        # random streams go on afterwards as if no round had happened.
        devices = sorted({p.device.index or 0 for p in head.parameters() if p.is_cuda})
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed * 1000 + number)
            for module in head.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        state = getattr(optimizer, "optimizer", optimizer).state
        for parameter in head.parameters():
            state.pop(parameter, None)


def round_line(facts: dict) -> str:
    """One line for the console: a round's epoch, cluster sizes and (if measured) purity."""
    purity = facts.get("purity")
    against = (f", purity {purity:.3f} against {PURITY_COLUMN} (one cluster: {facts['purity_chance']:.3f})"
               if purity is not None else "")
    return (f"re-clustered after epoch {facts['epoch']} (round {facts['round']}): cluster sizes "
            f"{facts.get('cluster_sizes')}{against}")
