"""The contract of a pretext task, and the two generic kinds of task that implement its training side.

A task owns its definition end to end (see ``docs`` in the README): which signals it reads, how a
segment's target is derived (pure functions, used by ``data_prep label``), and, for training, its head,
loss and metric. Derivation happens in two steps so that thresholds can depend on the whole corpus:

1. ``segment_values(media, segments, cfg)``: per segment, a continuous value (or class fractions) and
   whether the signal supports a label at all (e.g. a face was visible);
2. ``assign_labels(table, cfg)``: turn the values of all segments into labels and masks (e.g. high/low
   against the median of each speaker).
"""
from __future__ import annotations

import abc
import dataclasses
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from .scores import CORRELATION_SUMS, correlation_scores, correlation_sums, summarize_counts

# torch, and the project modules that import it (encoders), are imported inside the training-side functions
# below: they are heavy (seconds each) and the label stage, which imports every task, never needs them.

if TYPE_CHECKING:  # only for type hints: the task modules do not need data_prep at run time
    from data_prep.signals import MediaSignals

LABEL_MEANINGS = ("", "emotion", "arousal")


@dataclass
class DemoMedia:
    """One media file of a demo segment table written without video or face model
    (``avpretext.synthetic.write_segment_table``), as :meth:`PretextTask.demo_values` sees it."""

    index: int  # the media's number in the table, from 0
    audio: np.ndarray  # (N,) float32 at 16 kHz
    segments: list[tuple[float, float]]  # (start_s, end_s) of each segment
    lively: list[bool]  # per segment: loud speech and, where there is a face, a moving, expressive one
    face_coverage: list[float]  # per segment: the share of its frames with a face (0: none, as in audio-only files)
    rng: np.random.Generator  # the table's seeded draws, shared by the tasks in their order


class PretextTask(abc.ABC):
    """Base class of every pretext task: everything the label stage, training, the report and the audit call.

    Subclasses set the class attributes and implement the abstract methods; :func:`check_task_class` verifies
    both when a task is registered or loaded from ``module:Class``, so a half-written task fails at once with
    what is missing, not in the middle of a training run. :class:`ClassificationTask` implements the training
    side for tasks trained as classification of the pooled embedding (all built-in tasks).

    Attributes:
        name: registry name (``--tasks name``).
        Config: a dataclass with typed, documented defaults; its fields are the task's config section.
            Values are checked in its ``__post_init__`` so a bad config fails when it is read.
        classes: label names, index = label value (empty when the config decides them: such a task
            overrides ``num_classes`` and reports its classes in the facts of ``assign_labels``).
        replaced_whole: config fields that are tables replaced whole by a user's value, not merged key by key
            (e.g. the AU rule table: a user's table is the full set of classes).
        frame_level: targets per frame (regression from the encoder's frames) instead of one per segment.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    classes: ClassVar[tuple[str, ...]] = ()
    # What a label claims, so that ``data_prep audit`` can check it against reference labels without knowing
    # the task: "emotion" (the class names are emotions: scored against an emotion reference), "arousal"
    # (binary, label 1 = the higher-arousal side: scored against arousal, AUC from ``score_column``), or ""
    # (no reference meaning, e.g. acoustic clusters: only the class-by-reference table is reported).
    label_meaning: ClassVar[str] = ""
    # A continuous column whose order the label follows (larger = label 1), for the audit's AUC.
    score_column: ClassVar[str | None] = None
    replaced_whole: ClassVar[tuple[str, ...]] = ()
    # False: a target per segment (``<name>_label``), predicted from the pooled embedding. True: targets per
    # frame, read by :meth:`frame_targets` for each training crop, predicted by a head that reads the encoder's
    # frames (``EncoderOutput``; see :class:`FrameRegressionTask`); ``<name>_label`` then only says whether a
    # segment has targets (0) or not (-1).
    frame_level: ClassVar[bool] = False

    @property
    def label_column(self) -> str:
        return f"{self.name}_label"

    @property
    def mask_column(self) -> str:
        return f"{self.name}_mask"

    # -- derivation (data_prep label, data_prep audit) ------------------------------------------------------
    @abc.abstractmethod
    def segment_values(self, media: "MediaSignals", segments: list[tuple[float, float]], cfg,
                       context: Any = None) -> list[dict]:
        """One dict of ``{column: value}`` per segment ``(start_s, end_s)``. Pure: reads ``media`` only."""

    @abc.abstractmethod
    def assign_labels(self, table: pd.DataFrame, cfg) -> tuple[pd.DataFrame, dict]:
        """Add ``<name>_label`` (int, -1 when missing) and ``<name>_mask`` (bool) columns from the values.

        Returns the table and a dict of facts for the label statistics (e.g. the grouping used).
        """

    def label_statistics(self, labelled: pd.DataFrame, classes: list[str]) -> tuple[dict, list[str]]:
        """Task-specific entries for ``label_stats.json`` and warnings, from the labelled segments only.

        Default: none. (The AU task reports on how many face frames each rule fired.)
        """
        return {}, []

    def fit_context(self, medias: list["MediaSignals"], cfg) -> Any:
        """Optional corpus-level state computed before ``segment_values`` (e.g. per-speaker baselines)."""
        return None

    def audit_values(self, media: "MediaSignals", segments: list[tuple[float, float]], cfg,
                     context: Any = None) -> list[dict]:
        """Optional diagnostics per segment for ``data_prep audit`` (e.g. mean AU intensities), one dict of
        ``{name: float}`` per segment; the audit reports their means per reference class. Default: none."""
        return [{} for _ in segments]

    def demo_values(self, media: DemoMedia, cfg) -> list[dict]:
        """Plausible :meth:`segment_values` output for a demo table written without video (tests and demos that
        need labelled segments but not the face model), one dict per segment of ``media``. Default:
        ``segment_values`` from the segment times alone (``media`` None), which suits a task that reads no
        signal; a task that reads one overrides this with values like those a real run measures."""
        return self.segment_values(None, media.segments, cfg, None)

    # -- training (pretext/train.py) ---------------------------------------------------------------------
    @abc.abstractmethod
    def num_classes(self, cfg) -> int:
        """Width of the head's output."""

    @abc.abstractmethod
    def build_head(self, input_dim: int, cfg, hidden: int = 128):
        """A module: pooled embedding (B, input_dim) -> logits (B, num_classes)."""

    @abc.abstractmethod
    def loss(self, logits, target, mask):
        """Scalar loss over the labelled items (``mask`` True); attached to the graph even with none labelled."""

    @abc.abstractmethod
    def metric_counts(self, logits, target, mask, num_classes: int):
        """A float64 tensor of :meth:`metric_shape` (for classification the confusion, rows = targets) of the
        labelled items: sums that processes add up, scored by :meth:`summarize_metric`."""

    def metric_shape(self, num_classes: int) -> tuple[int, ...]:
        """Shape of :meth:`metric_counts`' tensor. Default: a (num_classes, num_classes) confusion."""
        return (num_classes, num_classes)

    def summarize_metric(self, counts) -> dict:
        """Scores (``{name: float}``, logged per task) from the summed :meth:`metric_counts`. Default:
        accuracy, UAR and item count of a confusion (:func:`summarize_counts`)."""
        return summarize_counts(counts)

    def frame_targets(self, row: pd.Series, start: int, stop: int, cfg) -> np.ndarray:
        """Frame-level tasks only: the targets of samples ``[start, stop)`` (16 kHz) of a segment's audio
        (``row``: its row of the segment table), ``(F, D + 1)`` float32: D target values per frame (NaN where
        a value does not exist) and a last column of ones, which padding in a batch leaves at 0."""
        raise NotImplementedError(f"pretext task {self.name!r} has no frame targets (frame_level is False)")


def check_task_class(cls, where: str = "") -> type[PretextTask]:
    """``cls`` if it fulfils the task contract, else ValueError naming every part that is missing or wrong."""
    where = where or getattr(cls, "__name__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, PretextTask)):
        raise ValueError(f"pretext task {where}: not a subclass of pretext.tasks.base.PretextTask")
    problems = []
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        problems.append(f"name {cls.name!r} must be an identifier (it prefixes the table's columns)")
    if not dataclasses.is_dataclass(cls.Config):
        problems.append("Config must be a dataclass")
    else:
        try:
            cls.Config()
        except Exception as err:  # noqa: BLE001 (any failure of the defaults is the task's defect)
            problems.append(f"Config() with its defaults fails: {err}")
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        if not set(cls.replaced_whole) <= fields:
            problems.append(f"replaced_whole names {sorted(set(cls.replaced_whole) - fields)}, not Config fields")
    if not (isinstance(cls.classes, tuple) and all(isinstance(c, str) for c in cls.classes)):
        problems.append("classes must be a tuple of class-name strings")
    if cls.label_meaning not in LABEL_MEANINGS:
        problems.append(f"label_meaning {cls.label_meaning!r}: choose from {LABEL_MEANINGS}")
    if cls.label_meaning == "arousal" and len(cls.classes) != 2:
        problems.append("an arousal task has two classes (low, high)")
    if cls.score_column is not None and not isinstance(cls.score_column, str):
        problems.append("score_column must be a column name or None")
    if inspect.isabstract(cls):
        problems.append(f"methods not implemented: {sorted(cls.__abstractmethods__)}")
    if not isinstance(cls.frame_level, bool):
        problems.append("frame_level must be True or False")
    elif cls.frame_level and cls.frame_targets is PretextTask.frame_targets:
        problems.append("a frame-level task implements frame_targets (its targets per training crop)")
    elif cls.frame_level and cls.classes:
        problems.append("a frame-level task regresses values: classes must be empty")
    if problems:
        raise ValueError(f"pretext task {where} breaks the task contract: " + "; ".join(problems))
    return cls


class ClassificationTask(PretextTask):
    """A pretext task trained as classification of the pooled utterance embedding.

    Provides the training side of the contract: ``num_classes``, ``build_head``, ``loss`` (cross-entropy
    with a mask for missing labels) and ``metric_counts`` (a confusion, summed across processes, from
    which accuracy and unweighted average recall follow).
    """

    def num_classes(self, cfg) -> int:
        return len(self.classes)

    def build_head(self, input_dim: int, cfg, hidden: int = 128):
        """A small MLP head: pooled embedding (B, input_dim) -> logits (B, num_classes)."""
        from torch import nn

        return nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(), nn.Dropout(0.1),
                             nn.Linear(hidden, self.num_classes(cfg)))

    def loss(self, logits, target, mask):
        """Masked mean cross-entropy.

        Args:
            logits: (B, C); target: (B,) int64 (any value where masked); mask: (B,) bool, True = labelled.

        Returns:
            Scalar; 0 (still attached to the graph) when no item in the batch is labelled, so every process
            runs the same backward pass under DDP.
        """
        import torch

        safe_target = torch.where(mask, target, torch.zeros_like(target))
        per_item = torch.nn.functional.cross_entropy(logits.float(), safe_target, reduction="none")
        weights = mask.to(per_item.dtype)
        return (per_item * weights).sum() / weights.sum().clamp(min=1.0)

    def metric_counts(self, logits, target, mask, num_classes: int):
        """(num_classes, num_classes) float64 confusion of the labelled items (rows = targets), on the
        logits' device so that processes can sum it."""
        import torch

        pred = logits.argmax(-1)[mask]
        t = target[mask]
        flat = torch.zeros(num_classes * num_classes, dtype=torch.float64, device=logits.device)
        flat.index_add_(0, t * num_classes + pred, torch.ones_like(t, dtype=torch.float64))
        return flat.view(num_classes, num_classes)


def frame_regression_head(input_dim: int, outputs: int, hidden: int):
    """A per-frame MLP head (:class:`FrameMLPHead`); torch is imported only when a head is built."""
    return _frame_head_class()(input_dim, outputs, hidden)


def _frame_head_class():
    import torch
    from torch import nn

    from encoders.base import frame_mask  # imports torch: heavy, training only

    class FrameMLPHead(nn.Module):
        """``EncoderOutput`` -> (B, F, outputs + 1): a 2-layer MLP per frame, and a last channel that is 1 on
        valid frames and 0 on padding (the loss reads each item's frame count from the output alone).
        ``reads_frames`` tells ``pretext.train.PretextModel`` to pass the frames, not the pooled embedding."""

        reads_frames = True

        def __init__(self, input_dim: int, outputs: int, hidden: int):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, outputs))

        def forward(self, encoded):
            valid = frame_mask(encoded.lengths, encoded.frames.shape[1]).unsqueeze(-1).to(encoded.frames.dtype)
            return torch.cat([self.mlp(encoded.frames) * valid, valid], dim=-1)

    return FrameMLPHead


def align_frame_targets(target, frames: int, encoder_counts):
    """Targets at their own frame rate averaged into each encoder frame of the same item.

    Args:
        target: (B, Ft, D + 1) from :meth:`PretextTask.frame_targets`, padded (last column 0 on padding).
        frames: Fe, the encoder's padded frame count.
        encoder_counts: (B,) valid encoder frames per item.

    Returns:
        (B, Fe, D): the mean of the finite target values whose frame falls in each encoder frame (target frame
        k of an item with Ft_b frames goes to encoder frame floor(k * Fe_b / Ft_b)); NaN where none does.
    """
    import torch

    values, present = target[..., :-1], target[..., -1] > 0.5
    batch, target_frames, dims = values.shape
    counts_t = present.sum(1, keepdim=True).clamp(min=1)
    k = torch.arange(target_frames, device=target.device)[None, :]
    last = (encoder_counts[:, None] - 1).clamp(min=0)
    index = torch.minimum(torch.div(k * encoder_counts[:, None], counts_t, rounding_mode="floor"), last)
    index = index.clamp(max=max(frames - 1, 0)).unsqueeze(-1).expand(-1, -1, dims)
    finite = torch.isfinite(values) & present.unsqueeze(-1) & (encoder_counts > 0)[:, None, None]
    sums = torch.zeros(batch, frames, dims, dtype=torch.float32, device=target.device)
    hits = torch.zeros_like(sums)
    sums.scatter_add_(1, index, torch.where(finite, values, torch.zeros_like(values)).float())
    hits.scatter_add_(1, index, finite.float())
    return torch.where(hits > 0, sums / hits.clamp(min=1), torch.full_like(sums, float("nan")))


class FrameRegressionTask(PretextTask):
    """A pretext task trained as regression of per-frame targets from the encoder's frames.

    Provides the training side of the contract for ``frame_level`` tasks: a per-frame MLP head, an L1 or L2
    loss over the finite targets of labelled segments (targets averaged into encoder frames by
    :func:`align_frame_targets`), and correlation sums (:func:`correlation_sums`) scored as Pearson's r and
    CCC per target dimension. Subclasses give ``target_names(cfg)`` and ``frame_targets``; their config has a
    ``loss`` field (``l1`` or ``l2``).
    """

    frame_level = True

    @abc.abstractmethod
    def target_names(self, cfg) -> list[str]:
        """Names of the D target dimensions, in the order of :meth:`frame_targets`' columns."""

    def num_classes(self, cfg) -> int:
        return len(self.target_names(cfg))

    def build_head(self, input_dim: int, cfg, hidden: int = 128):
        """The per-frame head; also binds the config's target names and loss to this task instance, since
        ``loss`` and ``summarize_metric`` are called without a config (training builds every head first)."""
        self._names, self._loss = self.target_names(cfg), getattr(cfg, "loss", "l1")
        return frame_regression_head(input_dim, self.num_classes(cfg), hidden)

    def _aligned(self, outputs, target, mask):
        """(pred, aligned target) over the frames of labelled segments: (N, D) each, NaN where no target."""
        pred, valid = outputs[..., :-1], outputs[..., -1] > 0.5
        aligned = align_frame_targets(target, outputs.shape[1], valid.sum(1))
        keep = valid & mask[:, None]
        return pred[keep], aligned[keep]

    def loss(self, logits, target, mask):
        """Mean absolute (``l1``) or squared (``l2``) error over the finite aligned targets of the labelled
        segments; 0 (attached to the graph) when there are none."""
        import torch

        pred, aligned = self._aligned(logits, target, mask)
        finite = torch.isfinite(aligned)
        if not bool(finite.any()):
            return logits.sum() * 0
        error = pred[finite] - aligned[finite]
        return (error.abs() if getattr(self, "_loss", "l1") == "l1" else error ** 2).mean()

    def metric_counts(self, logits, target, mask, num_classes: int):
        pred, aligned = self._aligned(logits, target, mask)
        return correlation_sums(pred, aligned)

    def metric_shape(self, num_classes: int) -> tuple[int, ...]:
        return (num_classes, len(CORRELATION_SUMS))

    def summarize_metric(self, counts) -> dict:
        names = getattr(self, "_names", None) or [str(i) for i in range(len(counts))]
        return correlation_scores(counts, names)
