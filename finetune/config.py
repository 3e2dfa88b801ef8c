"""The fine-tuning config: one dataclass whose fields are the options of ``finetune/train.py`` (each field's
comment is its ``--help`` text) and whose values every grid cell of ``finetune.experiment`` stores."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

RUN_CONFIG_FILE = "config.json"  # a fine-tuning run's (and a grid cell's) resolved FinetuneConfig
LRPROBE = "lrprobe"  # finetune.layer_statistics: no gradient training, so no model folder either
MODES = ("finetune", "probe", LRPROBE)
HEADS = ("linear", "mlp")
SELECTIONS = ("smoothed_uar", "full_window_uar", "dev_loss")


@dataclass
class FinetuneConfig:
    manifest: str = ""  # a manifest CSV (finetune.prepare)
    out: str = "runs/finetune"  # run folder: metrics.json, history, confusion plots, model/
    init: str = "scratch"  # scratch | a pretext run folder (uses RUN/encoder) | an exported encoder folder
    encoder: str = "cnn"  # architecture for scratch; must match a pretrained encoder's when given explicitly
    encoder_options: dict = dataclasses.field(default_factory=dict)  # scratch architecture overrides
    mode: str = "finetune"  # finetune | probe | lrprobe (frozen encoder's layer statistics + logistic regression)
    probe_layers: str = "all"  # lrprobe: statistics of all hidden states, or of the output frames only (last)
    head: str = "linear"  # linear | mlp
    head_hidden: int = 256  # hidden width of the mlp head
    dropout: float = 0.2  # dropout before the head
    classes: str = ""  # comma-separated class order (default: the manifest's labels, sorted)
    dimensions: str = ""  # e.g. arousal,valence: regression with a CCC loss instead of classes
    protocol: str = "auto"  # auto | split | folds (see finetune.splits)
    num_folds: int = 6  # speaker-independent folds when the protocol is folds
    fold: str = "all"  # all, or split names/indices (e.g. 0 or fold0,fold3)
    dev_speakers: int = 2  # training speakers held out per fold for model selection
    # Dev speakers are added (in the same seeded order) until every class has this many dev rows: a dev part of
    # one class makes dev UAR the recall of that class (BAVED: most speakers record one arousal level). 0: off.
    dev_min_per_class: int = 5
    split_seed: int = 0  # seeds the assignment of speakers to folds
    label_fraction: float = 1.0  # stratified, nested subset of the training rows
    seed: int = 0  # seeds the head, crops and sampling (one seed per grid cell)
    epochs: int = 30  # at most this many epochs (early stopping may end sooner)
    batch_size: int = 16  # per process
    lr: float = 1e-3  # head (and scratch encoder) learning rate
    # Pretrained encoder's learning rate = lr * this. 1.0, not the 0.1 common for large SSL encoders: on RAVDESS
    # the toolkit's small encoders fine-tuned at 0.1x underfit in 12 epochs, 10 UAR points below 1.0x
    # (docs/results.md, the gentle and slow_encoder ablations).
    encoder_lr_mult: float = 1.0
    freeze_epochs: int = 0  # pretrained encoder frozen for the first epochs (then fine-tuned)
    weight_decay: float = 0.01  # AdamW weight decay
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to 0 at the last epoch
    smooth: int = 3  # dev score averaged over the last `smooth` evaluations for model selection
    patience: int = 8  # stop when the smoothed dev score has not improved for this many epochs
    # Model selection (finetune.selection): the dev score the epoch is chosen on, smoothed over `smooth` epochs.
    # smoothed_uar: dev UAR (mean CCC for dimensions), any epoch, early windows averaging fewer epochs;
    # full_window_uar: the same, but only epochs whose window holds `smooth` evaluations (with 2 dev speakers a
    # lucky first epoch would otherwise be kept); dev_loss: the lowest smoothed dev loss (cross-entropy, or
    # 1 - CCC), a finer signal than UAR on a few dev clips.
    selection: str = "smoothed_uar"
    # Also score the test speakers at the epoch every other selection rule would keep (same smooth and patience;
    # metrics.json "selections"): training goes on until every rule would have stopped, and the run is the one
    # each rule's own run makes, so one run per cell compares the rules. The kept model is still `selection`'s.
    compare_selections: bool = False
    class_weights: bool = False  # weight the loss by inverse class frequency
    # Mixup (Zhang et al., ICLR 2018; in SER Latif et al., Interspeech 2020, mix to augment a GAN's training
    # features): each training item mixed with another of its batch, weight lam ~ Beta(alpha, alpha), inputs and
    # targets alike (waveforms or log-mel inputs, see mixup_input; pooled embeddings in probe mode). 0: off.
    mixup_alpha: float = 0.0
    # What mixup mixes (fine-tuning mode): waveform, or log_mel: the encoder's own log-mel front end's output
    # (encoders with input_domain log_mel, e.g. cnn), so two utterances mix as spectrograms.
    mixup_input: str = "waveform"
    # Weight of an auxiliary speaker-id loss (Latif et al., IEEE TAC 2022; finetune.auxiliary): a head on the shared
    # encoder classifies the split's training speakers, its cross-entropy added to the emotion loss with this
    # weight. 0: off. Semi-supervised: below label_fraction 1 the auxiliary heads train on every training row, the
    # emotion loss on the labelled ones. Fine-tuning mode only; the auxiliary heads are not saved with the model.
    speaker_weight: float = 0.0
    # Weight of an auxiliary gender loss (the manifest's gender column; rows without one are left out), as
    # speaker_weight. 0: off.
    gender_weight: float = 0.0
    # Train the speaker head through a gradient reversal layer: the encoder is pushed to remove speaker
    # information (adversarial speaker removal) instead of to encode it. Needs speaker_weight > 0.
    speaker_adversarial: bool = False
    # DeepEmoCluster's semi-supervised form (Lin, Sridhar and Busso, ICASSP 2021; finetune.auxiliary): below
    # label_fraction 1, every training row gets a k-means pseudo-class of the model's own pooled embedding,
    # re-made every recluster_every epochs (the cluster head re-initialised each time, as in DeepCluster), and a
    # cluster head's cross-entropy on them is added with this weight to the emotion loss on the labelled rows.
    # 0: off. Fine-tuning mode only; the cluster head is not saved with the model.
    cluster_weight: float = 0.0
    cluster_k: int = 8  # pseudo-classes of the cluster loss (k of k-means)
    recluster_every: int = 1  # epochs between re-clusterings of the cluster loss (the first is before epoch 1)
    # Chunk-level modelling (Lin and Busso; finetune.chunking): each utterance (trained, evaluated or predicted)
    # split into chunks of this many seconds, encoded one by one and aggregated. 0: off.
    chunk_seconds: float = 0.0
    # dynamic: every utterance becomes exactly chunk_count chunks whose overlap, (C*S - L)/(C - 1), adapts to its
    # length L, and whole utterances are read (no training crop, no evaluation limit); sliding: a fixed
    # chunk_overlap, so longer utterances give more chunks, after the max_seconds crop (not the papers' method).
    chunk_mode: str = "dynamic"
    chunk_count: int = 11  # chunks per utterance in the dynamic mode (C; the papers: ceil(longest / chunk_seconds))
    chunk_overlap: float = 0.5  # sliding mode: fraction of a chunk shared with the next one, in [0, 1)
    chunk_pooling: str = "mean"  # mean | attention | gated | gru (a recurrent layer over the chunk sequence)
    max_seconds: float = 4.0  # training crops (not with dynamic chunking: whole utterances)
    eval_max_seconds: float = 10.0  # evaluation reads up to this much of each utterance, centred (dynamic chunks: all)
    # Fusion (finetune.fusion): the head also reads the utterance's standardised openSMILE functionals beside the
    # pooled embedding: egemaps (88) or compare (6,373). Empty: off.
    fuse: str = ""
    num_workers: int = 2  # audio-loading worker processes per training process
    mixed_precision: str = "no"  # no | bf16 | fp16 (passed to Accelerate)
    skip_bad_audio: bool = False  # drop unreadable files (named and counted in metrics.json) instead of stopping
    save_model: bool = True  # write the selected model to OUT/model (for predict)
    progress: bool = True  # print one line per epoch
