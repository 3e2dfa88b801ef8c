"""Auxiliary speaker and gender tasks during fine-tuning, semi-supervised as in Latif et al. [0], and
adversarial speaker removal through a gradient reversal layer (Ganin and Lempitsky, ICML 2015).

Each auxiliary task is one more classification head on the shared encoder's pooled embedding, trained with a
weighted cross-entropy next to the emotion loss; only training uses them (they are not saved with the model,
and prediction never sees them). Speaker ids are the training speakers of the split (dev and test speakers
have no id: speaker independence); gender comes from the manifest's ``gender`` column.

Semi-supervised: speaker and gender are known for far more audio than emotion is, and [0]'s gain comes from
training the auxiliary tasks on all of it ([0] adds whole speaker-classification corpora; here that audio is
the split's own training rows whose emotion is not used). So with ``--label-fraction`` below 1 and an auxiliary
task on, the training set is every training row of the split (:func:`training_rows`): the auxiliary heads learn
from every row whose speaker/gender is known, the emotion loss only from the labelled fraction (the others'
emotion is hidden, :func:`hide_unlabelled`), and batches mix both kinds of rows. An epoch then covers all
training rows.

DeepEmoCluster [1] (``--cluster-weight``) is the third auxiliary task, semi-supervised the same way: every
training row gets a pseudo-class, the index of its k-means cluster among the pooled embeddings of all training
rows by the model being trained (standardised per speaker, PCA, k-means: :class:`pretext.deep_cluster.
DeepClusterLoop`, the code pretraining's ``--recluster-every`` runs). The clusters are made before the first
epoch and re-made every ``--recluster-every`` epochs, the cluster head re-initialised each time with its
optimizer state (DeepCluster [2]: cluster indices of one round mean nothing in the next). The pseudo-class
loss covers every training row, labelled or not ([1]'s pseudo-label classifier learns from both), and the
emotion loss the labelled ones only: unlabelled rows shape the encoder through the cluster head alone. The
rounds are written to ``SPLIT/clusters/round_NNN.parquet`` and ``.json``.

With ``speaker_adversarial`` the speaker head sees the embedding through a gradient reversal: the head still
learns to tell the training speakers apart, while the encoder receives the negated gradient and is pushed to
remove what the head uses, which is what a speaker-independent test rewards. [0] does not do this (its
auxiliary tasks share what they learn); it is the domain-adversarial alternative, trained on the same rows.

[0] S. Latif, R. Rana, S. Khalifa, R. Jurdak, J. Epps, B. W. Schuller, "Multi-task semi-supervised adversarial
    autoencoding for speech emotion recognition", IEEE Transactions on Affective Computing 13(2):992-1004,
    2022 (online 2020). Its auxiliary tasks are speaker and gender identification next to emotion, trained on
    labelled and unlabelled data; its adversarial autoencoder part is not reproduced here.
[1] W.-C. Lin, K. Sridhar and C. Busso, "DeepEmoCluster: a semi-supervised framework for latent cluster
    representation of speech emotions", ICASSP 2021. Its emotion loss is a CCC on attributes
    (MSP-Podcast); here it is the run's own emotion loss (classes or dimensions).
[2] M. Caron, P. Bojanowski, A. Joulin and M. Douze, "Deep clustering for unsupervised learning of visual
    features", ECCV 2018.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from avpretext.common.batches import collate, SegmentDataset
from pretext.deep_cluster import DeepClusterLoop, TASK as CLUSTER
from pretext.tasks.cluster import ClusterConfig

AUX_TASKS = ("speaker", "gender", CLUSTER)
LABELLED = "emotion_labelled"  # training-row flag: is this row's emotion used (semi-supervised training)?
# Pseudo-classes are standardised per speaker (every manifest names one): a cluster then says how an utterance
# differs from its speaker's usual voice rather than who speaks, as the cluster pretext task does.
CLUSTER_CONFIG = ClusterConfig(group="speaker")


def aux_weights(config) -> dict[str, float]:
    """{task: loss weight} of the auxiliary tasks switched on (weight > 0)."""
    weights = {"speaker": config.speaker_weight, "gender": config.gender_weight, CLUSTER: config.cluster_weight}
    return {name: float(w) for name, w in weights.items() if w > 0}


def check_auxiliary(config, manifest: pd.DataFrame, source: str) -> None:
    """ValueError naming the option (and ``source``, the manifest) when the auxiliary tasks cannot run."""
    for name in AUX_TASKS:
        if getattr(config, f"{name}_weight") < 0:
            raise ValueError(f"--{name}-weight {getattr(config, f'{name}_weight')}: must be >= 0 (0: off)")
    weights = aux_weights(config)
    if config.speaker_adversarial and "speaker" not in weights:
        raise ValueError("--speaker-adversarial needs --speaker-weight > 0 (the weight of the reversed loss)")
    if weights and config.mode != "finetune":
        options = "/".join(f"--{name}-weight" for name in weights)
        raise ValueError(f"{options} need --mode finetune: the {config.mode} mode's encoder is frozen, so an "
                         "auxiliary head could not shape it")
    if CLUSTER in weights:
        if config.label_fraction >= 1:
            raise ValueError(f"--cluster-weight {config.cluster_weight} trains on the unlabelled training rows, and "
                             f"at --label-fraction {config.label_fraction} there are none: use a fraction below 1")
        if config.cluster_k < 2:
            raise ValueError(f"--cluster-k {config.cluster_k}: need at least 2 clusters")
        if config.recluster_every < 1:
            raise ValueError(f"--recluster-every {config.recluster_every}: must be >= 1 (epochs between "
                             "re-clusterings)")
    if "gender" in weights:
        genders = manifest["gender"].astype(str).str.strip() if "gender" in manifest else pd.Series([], dtype=str)
        known = sorted(set(genders) - {"", "nan", "None"})
        if len(known) < 2:
            raise ValueError(f"{source}: --gender-weight needs a 'gender' column with at least two values "
                             f"(found {known or 'none'})")


def add_aux_columns(table: pd.DataFrame, rows: pd.DataFrame, names, cluster_k: int = 0
                    ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The training segment table with ``<task>_label``/``<task>_mask`` columns for each auxiliary task.

    Args:
        table: :func:`finetune.data.segment_table` of ``rows`` (same order).
        rows: the training manifest rows (``speaker``; ``gender`` when that task is on).
        names: the auxiliary tasks switched on.
        cluster_k: pseudo-classes of the cluster task (when on).

    Returns:
        (table, {task: number of classes}); classes are the sorted values seen in ``rows``, and rows without a
        gender are masked out of that task. The cluster task's rows are all masked until its first round
        (:func:`cluster_rounds`) labels them; its table also gets ``cluster_valid`` (every row may be
        clustered) and a ``segment_id`` (the row's audio path) that the saved rounds name the rows by.
    """
    table, num_classes = table.copy(), {}
    for name in names:
        if name == CLUSTER:
            table = table.assign(cluster_label=np.zeros(len(table), dtype=np.int64),
                                 cluster_mask=np.zeros(len(table), dtype=bool),
                                 cluster_valid=np.ones(len(table), dtype=bool),
                                 segment_id=table["audio_path"].astype(str).to_numpy())
            num_classes[name] = cluster_k
            continue
        values = rows[name].astype(str).str.strip().to_numpy()
        known = values != ""
        if name == "gender":
            known &= ~np.isin(values, ["nan", "None"])
        classes = sorted(set(values[known]))
        index = {value: i for i, value in enumerate(classes)}
        table[f"{name}_label"] = np.array([index.get(v, 0) for v in values], dtype=np.int64)
        table[f"{name}_mask"] = known
        num_classes[name] = len(classes)
    return table, num_classes


def training_rows(train: pd.DataFrame, labelled: pd.DataFrame, weights: dict) -> pd.DataFrame:
    """The rows fine-tuning trains on.

    Args:
        train: every training row of the split (manifest rows).
        labelled: the rows whose emotion is used (``--label-fraction``'s subset of ``train``, same index).
        weights: the auxiliary tasks switched on (:func:`aux_weights`).

    Returns:
        ``labelled`` when no auxiliary task is on or every row is labelled; otherwise every row of ``train``
        with a :data:`LABELLED` column saying whose emotion counts.
    """
    if not weights or len(labelled) == len(train):
        return labelled
    return train.assign(**{LABELLED: train.index.isin(labelled.index)})


def hide_unlabelled(table: pd.DataFrame, rows: pd.DataFrame, target_names) -> pd.DataFrame:
    """The segment table with the emotion targets of rows not flagged :data:`LABELLED` masked out (and their
    labels zeroed, so no unlabelled emotion reaches a batch). ``rows``: the table's manifest rows, same order."""
    if LABELLED not in rows:
        return table
    hidden, table = ~rows[LABELLED].to_numpy(bool), table.copy()
    for name in target_names:
        table.loc[hidden, f"{name}_mask"] = False
        table.loc[hidden, f"{name}_label"] = 0
    return table


def labelled_items(table: pd.DataFrame, target_names) -> int:
    """Rows of a segment table with at least one emotion target labelled."""
    return int(np.any([table[f"{name}_mask"].to_numpy(bool) for name in target_names], axis=0).sum())


def cluster_rounds(config, train_set: SegmentDataset, out: Path, max_seconds: float) -> DeepClusterLoop:
    """The cluster task's rounds over a split's training set (every ``config.recluster_every`` epochs, k =
    ``config.cluster_k``, seeded by ``config.seed``), written to ``out/clusters``. ``max_seconds``: how much of
    each utterance is embedded (the evaluation limit)."""

    def embed(model, table: pd.DataFrame, device) -> np.ndarray:
        return embed_rows(model, table, device, max_seconds, config.batch_size)

    cfg = dataclasses.replace(CLUSTER_CONFIG, k=config.cluster_k, seed=config.seed)
    return DeepClusterLoop(config.recluster_every, cfg, [train_set], out, config.seed, config.batch_size,
                           embed=embed, head=lambda model: model.aux[CLUSTER])


@torch.no_grad()
def embed_rows(model, table: pd.DataFrame, device, max_seconds: float, batch_size: int) -> np.ndarray:
    """``(N, D)`` utterance embeddings of a segment table's rows by an SER model (``model.embed``: the whole
    utterance's pooled embedding, or its pooled chunks), in eval mode, each utterance read as evaluation
    reads it (centred, up to ``max_seconds``)."""
    loader = torch.utils.data.DataLoader(SegmentDataset(table, [], max_seconds, False), batch_size=batch_size,
                                         shuffle=False, collate_fn=collate)
    was_training = model.training
    model.eval()
    try:
        parts = [model.embed({"wavs": batch["wavs"].to(device), "lengths": batch["lengths"].to(device)})
                 .float().cpu().numpy() for batch in loader]
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient is multiplied by ``-scale`` on the way back."""
    return _ReverseGradient.apply(x, scale)


def build_aux_heads(dim: int, num_classes: dict[str, int], dropout: float) -> nn.ModuleDict:
    """One dropout + linear head per auxiliary task on the (D,) pooled embedding."""
    return nn.ModuleDict({name: nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n))
                          for name, n in num_classes.items()})


def loss_mask(batch: dict, name: str, perm: torch.Tensor | None) -> torch.Tensor:
    """(B,) bool: the items task ``name``'s loss averages over (labelled; with mixup's ``perm``, on both sides)."""
    mask = batch["masks"][name]
    return mask if perm is None else mask & mask[perm]


def aux_items(batch: dict, weights: dict[str, float], perm: torch.Tensor | None = None) -> torch.Tensor:
    """(T,) float: how many items each task's loss in :func:`aux_loss` averages over, tasks in ``weights``'
    order (``perm``: mixup's partners, as given to :func:`aux_loss`)."""
    return torch.stack([loss_mask(batch, name, perm).sum() for name in weights]).float()


def aux_loss(aux_outputs: dict[str, torch.Tensor], batch: dict, weights: dict[str, float],
             lam: float | None = None, perm: torch.Tensor | None = None,
             shares: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over tasks of weight x cross-entropy on the items labelled for that task.

    With mixup (``lam``, ``perm`` of :func:`finetune.losses.mix_batch`) the targets are mixed like the emotion's:
    ``lam * CE(y) + (1 - lam) * CE(y[perm])`` over the items labelled on both sides.

    ``shares``: (T,) factor per task (``weights``' order; default 1) multiplying its mean over this batch's
    items: in a multi-process step, this process's share of the mean over every process's items
    (:func:`finetune.loop._step_shares`, from :func:`aux_items`).
    """
    total = None
    for i, (name, weight) in enumerate(weights.items()):
        logits, labels = aux_outputs[name], batch["labels"][name]
        mask = loss_mask(batch, name, perm if lam is not None else None)
        if not mask.any():
            loss = logits.sum() * 0  # keeps the graph (and DDP's gradient hooks) connected
        elif lam is None:
            loss = nn.functional.cross_entropy(logits[mask], labels[mask])
        else:
            loss = (lam * nn.functional.cross_entropy(logits[mask], labels[mask])
                    + (1 - lam) * nn.functional.cross_entropy(logits[mask], labels[perm][mask]))
        if shares is not None:
            loss = loss * shares[i]
        total = weight * loss if total is None else total + weight * loss
    return total
