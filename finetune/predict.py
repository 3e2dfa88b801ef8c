"""Emotion probabilities for audio files, or the audio track of videos, from a fine-tuned model.

    python finetune/predict.py MODEL INPUT [INPUT ...] [--out predictions.csv|.json] [--batch-size 8]

MODEL is a model folder written by ``finetune/train.py`` (``OUT/<split>/model``) or a whole fine-tuning run
``OUT``: then the models of all its splits are averaged (an ensemble over speaker folds). INPUT is an audio or
video file, a folder (searched recursively for media), or a CSV manifest with a ``path`` column. Files that
cannot be decoded are reported with their reason and skipped, and so are files under half the length of the
shortest utterance the model was trained on (see :func:`minimum_seconds`); the rest are predicted. A model
trained with ``--fuse egemaps`` gets each file's openSMILE functionals, computed here from the audio read
(:func:`finetune.fusion.add_functionals`) and standardised with the statistics saved in the model folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avpretext.common.audio import SAMPLE_RATE, AudioError, read_audio
from avpretext.common.batches import collate
from avpretext.common.cli import CommandParser, command_name
from avpretext.common.io import check_output_file, write_atomic, write_json_atomic
from data_prep.decode import AudioInfo, DecodeError, iter_audio_chunks
from data_prep.sources import MEDIA_EXTENSIONS
from encoders.io import read_json
from finetune.fusion import add_functionals
from finetune.model import LABELS_FILE, MODEL_DIR, SHORTEST_TRAINING_KEY, SERModel, load_model


def model_folders(path: str | Path) -> list[Path]:
    """A model folder itself, or every ``<split>/model`` of a fine-tuning run."""
    path = Path(path)
    if (path / LABELS_FILE).exists():
        return [path]
    found = sorted(p.parent for p in path.glob(f"*/{MODEL_DIR}/{LABELS_FILE}"))
    if not found:
        raise ValueError(f"{path}: no fine-tuned model ({LABELS_FILE}) in it or in its */{MODEL_DIR} folders "
                         "(train with save_model on)")
    return found


def input_files(inputs: list[str]) -> list[Path]:
    """Expand folders (media files, recursively) and CSV manifests (``path`` column, relative to the CSV)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.suffix.lower() in MEDIA_EXTENSIONS and p.is_file())
        elif item.suffix.lower() == ".csv":
            table = pd.read_csv(item, dtype=str, keep_default_na=False)
            if "path" not in table:
                raise ValueError(f"{item}: no 'path' column; columns: {list(table.columns)}")
            files += [p if p.is_absolute() else item.parent / p for p in map(Path, table["path"])]
        else:
            files.append(item)
    return files


def load_waveform(path: Path, max_seconds: float | None = None) -> torch.Tensor:
    """(T,) float32 16 kHz mono from an audio file (soundfile) or any file PyAV decodes (video, mp3, ...)."""
    stop = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    try:
        return read_audio(path, 0, stop)
    except AudioError as sound_error:
        try:
            chunks = []
            for chunk in iter_audio_chunks(str(path), AudioInfo()):
                chunks.append(chunk)
                if stop is not None and sum(map(len, chunks)) >= stop:
                    break
        except (DecodeError, OSError) as err:
            raise AudioError(str(path), f"{sound_error.reason}; PyAV: {err}") from err
        return torch.from_numpy(np.concatenate(chunks)[:stop].astype(np.float32))


# Masked-mean pooling lets a model score somewhat shorter audio than it was trained on (a 2.5 s clip for a
# model of 3-5 s utterances is fine); far below that its output is extrapolation.
SHORTEST_FRACTION = 0.5


def minimum_seconds(model_path: str | Path) -> float:
    """The shortest audio the model(s) at ``model_path`` predict: ``SHORTEST_FRACTION`` of the shortest
    utterance they were trained on (``labels.json``; an ensemble takes its most permissive model), 0 for
    folders that predate the record.

    Shorter files are refused (skipped and listed) rather than scored with a warning: a row of the
    predictions table looks as valid as any other once the table is used, while a fragment far shorter than
    anything the model learned from (0.09 s of a truncated file) gives an arbitrary but confident label.
    """
    recorded = [read_json(folder / LABELS_FILE).get(SHORTEST_TRAINING_KEY) for folder in model_folders(model_path)]
    known = [float(s) for s in recorded if isinstance(s, (int, float))]
    return SHORTEST_FRACTION * min(known) if known and len(known) == len(recorded) else 0.0


@torch.no_grad()
def predict(models: list[SERModel], class_names: list[str], files: list[Path], batch_size: int = 8,
            max_seconds: float | None = 30.0, min_seconds: float = 0.0) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Class probabilities (averaged over ``models``) per file; files shorter than ``min_seconds`` are skipped.

    Returns:
        (table with ``path``, ``prediction`` and one probability column per class, [(path, reason) skipped]).
    """
    rows, skipped = [], []
    for start in range(0, len(files), batch_size):
        batch_files, items = [], []
        for path in files[start:start + batch_size]:
            try:
                wav = load_waveform(path, max_seconds)
            except AudioError as err:
                skipped.append((str(path), err.reason))
                continue
            if len(wav) < min_seconds * SAMPLE_RATE:
                skipped.append((str(path), f"only {len(wav) / SAMPLE_RATE:.2f} s of audio, under the minimum of "
                                           f"{min_seconds:.2f} s (--min-seconds; by default half the model's "
                                           "shortest training utterance; 0 predicts every file)"))
                continue
            items.append((wav, {}, {}))
            batch_files.append(path)
        if not items:
            continue
        batch = add_functionals(collate(items), [wav for wav, _, _ in items], models)  # fused models only
        probs = torch.stack([model(batch).softmax(-1) for model in models]).mean(0).numpy()
        for path, p in zip(batch_files, probs):
            rows.append({"path": str(path), "prediction": class_names[int(p.argmax())],
                         **{name: float(v) for name, v in zip(class_names, p)}})
    return pd.DataFrame(rows, columns=["path", "prediction", *class_names]), skipped


def load_models(path: str | Path) -> tuple[list[SERModel], list[str]]:
    models, names = [], None
    for folder in model_folders(path):
        model, targets = load_model(folder)
        if not targets.categorical:
            raise ValueError(f"{folder}: a dimensional model; predict.py handles categorical emotion models")
        if names is not None and targets.class_names != names:
            raise ValueError(f"{folder}: classes {targets.class_names} differ from the other models' {names}")
        models.append(model)
        names = targets.class_names
    return models, names


def main(argv=None) -> int:
    prog = command_name("finetune/predict.py", "avpretext-predict")
    parser = CommandParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a model folder (OUT/<split>/model) or a fine-tuning run OUT")
    parser.add_argument("inputs", nargs="+", help="audio/video files, folders or CSV manifests")
    parser.add_argument("--out", default="", help="predictions .csv or .json (default: print CSV)")
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per forward pass (default 8)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="read at most this much of each file")
    parser.add_argument("--min-seconds", type=float, default=None,
                        help="skip (and list) files shorter than this (default: half the shortest utterance the "
                             "model was trained on, from its labels.json; 0 predicts every file)")
    args = parser.parse_args(argv)
    try:
        if args.out:  # before any inference: the write at the end must not fail after all the work
            check_output_file(args.out)
        models, class_names = load_models(args.model)
        min_seconds = minimum_seconds(args.model) if args.min_seconds is None else args.min_seconds
        table, skipped = predict(models, class_names, input_files(args.inputs), args.batch_size, args.max_seconds,
                                 min_seconds)
    except (ValueError, IsADirectoryError, NotADirectoryError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if args.out.endswith(".json"):
        write_json_atomic(args.out, table.to_dict(orient="records"))
    elif args.out:
        write_atomic(args.out, lambda tmp: table.to_csv(tmp, index=False))
    else:
        print(table.to_csv(index=False), end="")
    if args.out:
        print(f"{len(table)} predictions ({len(models)} model(s)) -> {args.out}; {len(skipped)} skipped")
    return 1 if skipped and table.empty else 0


if __name__ == "__main__":
    sys.exit(main())
