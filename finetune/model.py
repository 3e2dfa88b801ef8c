"""The SER model (encoder + head), where its encoder comes from (``--init``), and its model folder on disk.

A model folder holds ``encoder/`` (:func:`encoders.save_pretrained`), the head's safetensors and a JSON file of
labels and head config; :func:`load_model` rebuilds it without unpickling anything. ``finetune/predict.py``
needs only this module.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from avpretext.common.io import write_json_atomic
from encoders import ENCODER_CONFIG_FILE, build_encoder, load_pretrained, read_encoder_config, save_pretrained
from encoders.io import LoadError, read_json, read_safetensors, save_tensors
from finetune.auxiliary import build_aux_heads, reverse_gradient
from finetune.chunking import ChunkPooling, embed_chunked
from finetune.config import HEADS, FinetuneConfig
from finetune.data import Targets
from finetune.losses import mix_padded

MODEL_DIR = "model"
HEAD_FILE = "head.safetensors"
LABELS_FILE = "labels.json"
# labels.json: seconds of the shortest utterance the model was trained on (finetune.predict refuses far shorter
# audio).
SHORTEST_TRAINING_KEY = "shortest_training_seconds"


class Standardize(nn.Module):
    """(x - mean) / std with stored statistics (identity until :meth:`fit`). A frozen encoder's embeddings
    can have any scale; a linear probe trains much better on standardised ones."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, embeddings: torch.Tensor) -> None:
        """Statistics of (N, d) rows, d <= dim: the first d columns; the rest stay the identity. A fused head's
        input is the embedding followed by functionals that are standardised already (``fuse_norm``)."""
        d = embeddings.shape[1]
        self.mean[:d].copy_(embeddings.mean(0))
        self.std[:d].copy_(embeddings.std(0).clamp(min=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SERModel(nn.Module):
    """Encoder + head. ``forward(batch)`` -> (B, num_outputs) logits (or dimension values).

    A batch holds either audio (``wavs`` (B, T), ``lengths`` (B,)) or, in probe mode, precomputed pooled
    ``embeddings`` (B, D) that go straight to the head. With ``fuse`` (``{"features": "egemaps", "dim": F}``,
    :mod:`finetune.fusion`) it also holds ``functionals`` (B, F): standardised by ``fuse_norm`` (training
    statistics, saved with the head) and given to the head beside the embedding, (B, D + F).
    """

    def __init__(self, encoder, num_outputs: int, head: str = "linear", hidden: int = 256, dropout: float = 0.2,
                 aux_classes: dict[str, int] | None = None, adversarial: tuple[str, ...] = (),
                 chunking: dict | None = None, fuse: dict | None = None):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose from {HEADS}")
        self.encoder = encoder
        self.fuse = fuse
        self.fuse_norm = Standardize(fuse["dim"]) if fuse else None
        self.head_config = {"head": head, "hidden": hidden, "dropout": dropout, "num_outputs": num_outputs,
                            "chunking": chunking, "fuse": fuse}
        dim = encoder.output_dim + (fuse["dim"] if fuse else 0)  # the head's input
        # finetune.chunking: None encodes each utterance whole; the pooling's weights (attention) are saved
        # with the head.
        self.chunking = chunking
        self.chunk_pool = ChunkPooling(encoder.output_dim, chunking["pooling"]) if chunking else None
        if head == "linear":
            self.head = nn.Sequential(Standardize(dim), nn.Dropout(dropout), nn.Linear(dim, num_outputs))
        else:
            self.head = nn.Sequential(Standardize(dim), nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, num_outputs))
        # Training-only heads of finetune.auxiliary (never saved); those in ``adversarial`` see the embedding
        # through a gradient reversal.
        self.aux = build_aux_heads(encoder.output_dim, aux_classes or {}, dropout)
        self.adversarial = tuple(adversarial)

    def embed(self, batch: dict, mix: tuple | None = None) -> torch.Tensor:
        """(B, D) utterance embeddings: the probe's precomputed ones, whole utterances, or pooled chunks.

        ``mix``: (lam, perm) mixes the items' log-mel inputs inside the encoder (mixup on log-mel inputs,
        :func:`finetune.losses.mix_padded`); waveforms and embeddings are mixed before the model instead.
        """
        if "embeddings" in batch:
            return batch["embeddings"]
        if self.chunking:
            return embed_chunked(self.encoder, self.chunk_pool, self.chunking, batch["wavs"], batch["lengths"])
        if mix is not None:
            features, lengths = self.encoder.input_features(batch["wavs"], batch["lengths"])
            return self.encoder.encode_features(*mix_padded(features, lengths, *mix)).pooled
        return self.encoder(batch["wavs"], batch["lengths"]).pooled

    def forward(self, batch: dict, aux: bool = False, mix: tuple | None = None):
        """(B, num_outputs); with ``aux`` a pair of that and {task: (B, classes)} of the auxiliary heads.
        ``mix``: see :meth:`embed`."""
        pooled = self.embed(batch, mix)
        outputs = self.head(self.head_input(pooled, batch))
        if not aux:
            return outputs
        return outputs, {name: head(reverse_gradient(pooled) if name in self.adversarial else pooled)
                         for name, head in self.aux.items()}


    def head_input(self, pooled: torch.Tensor, batch: dict) -> torch.Tensor:
        """(B, D), or (B, D + F) with the batch's standardised functionals when fused."""
        if self.fuse_norm is None:
            return pooled
        if "functionals" not in batch:
            raise ValueError(f"a model fused with {self.fuse['features']} functionals needs them in the batch "
                             "(finetune.fusion)")
        return torch.cat([pooled, self.fuse_norm(batch["functionals"].to(pooled))], dim=1)


def resolve_init(config: FinetuneConfig):
    """The starting encoder: (encoder, pretrained: bool, source description)."""
    if config.init == "scratch":
        return build_encoder(config.encoder, **config.encoder_options), False, "scratch"
    folder = encoder_folder(config.init)
    if not (folder / ENCODER_CONFIG_FILE).exists():
        raise ValueError(f"--init {config.init}: neither an exported encoder (config.json + model.safetensors) "
                         "nor a pretext run folder holding one in encoder/")
    encoder = load_pretrained(folder)
    if config.encoder != encoder.name and config.encoder != FinetuneConfig.encoder:
        raise ValueError(f"--encoder {config.encoder} but {folder} holds a {encoder.name} encoder")
    return encoder, True, str(folder)


def encoder_folder(path: str | Path) -> Path:
    """An exported encoder folder, or the ``encoder/`` folder of a pretext run."""
    path = Path(path)
    return path / "encoder" if (path / "encoder" / ENCODER_CONFIG_FILE).exists() else path


def scratch_twin(path: str | Path) -> tuple[str, dict]:
    """(name, options) that rebuild a saved encoder's architecture with fresh weights: the fair baseline."""
    return read_encoder_config(encoder_folder(path))


def save_model(model: SERModel, targets: Targets, directory: Path, shortest_training_seconds: float | None = None
               ) -> Path:
    """Encoder (``save_pretrained``) + head weights (safetensors) + labels/head config (JSON)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_pretrained(model.encoder, directory / "encoder")
    save_tensors(head_state(model), directory / HEAD_FILE)
    shortest = {} if shortest_training_seconds is None else {SHORTEST_TRAINING_KEY: shortest_training_seconds}
    write_json_atomic(directory / LABELS_FILE, {"class_names": targets.class_names,
                                                "dimensions": targets.dimensions, **model.head_config, **shortest})
    return directory


def load_model(directory: str | Path) -> tuple[SERModel, Targets]:
    """Rebuild a model written by :func:`save_model` (nothing is unpickled)."""
    directory = Path(directory)
    info = read_json(directory / LABELS_FILE)
    encoder = load_pretrained(directory / "encoder")
    try:
        head = {key: info[key] for key in ("num_outputs", "head", "hidden", "dropout")}
        targets = Targets(list(info["class_names"]), list(info["dimensions"]))
        # a model without chunking or fusion records neither: None
        model = SERModel(encoder, **head, chunking=info.get("chunking"), fuse=info.get("fuse"))
    except (KeyError, TypeError, ValueError) as err:
        raise LoadError(directory / LABELS_FILE, f"not a usable model description ({type(err).__name__}: "
                                                 f"{err})") from None
    state = read_safetensors(directory / HEAD_FILE, head_state(model), LoadError)
    prefixed = (CHUNK_POOL_PREFIX, FUSE_NORM_PREFIX)
    model.head.load_state_dict({k: v for k, v in state.items() if not k.startswith(prefixed)})
    for prefix, part in ((CHUNK_POOL_PREFIX, model.chunk_pool), (FUSE_NORM_PREFIX, model.fuse_norm)):
        if part is not None:
            part.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return model.eval(), targets


CHUNK_POOL_PREFIX = "chunk_pool."
FUSE_NORM_PREFIX = "fuse_norm."


def head_state(model: SERModel) -> dict:
    """What ``head.safetensors`` holds: the head's tensors (unprefixed, as before chunking existed) and those
    of an attention chunk pooling under ``chunk_pool.``, and a fused model's functional statistics under
    ``fuse_norm.``."""
    state = dict(model.head.state_dict())
    for prefix, part in ((CHUNK_POOL_PREFIX, model.chunk_pool), (FUSE_NORM_PREFIX, model.fuse_norm)):
        if part is not None:
            state |= {prefix + k: v for k, v in part.state_dict().items()}
    return state
