"""Reading back what ``data_prep extract`` stored for one media item."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from . import store
from .face_signals import load_face_arrays


@dataclass
class MediaSignals:
    """Stored signals of one media item (arrays are memory-mapped, not loaded).

    Attributes:
        id, speaker, meta: identity and the stored ``meta.json``.
        audio_path: the 16 kHz mono FLAC, None without an audio track.
        energy: (E,) float32 frame energy in dB at ``energy_rate`` Hz (empty without audio).
        face: arrays of :data:`data_prep.face_signals.FACE_ARRAYS` plus ``aus`` (None without video).
        frame_size: (width, height) of the analysed frames.
        speech: (E,) bool speech-activity mask over energy frames; set by the labelling stage, which owns
            the speech detector's configuration.
    """

    id: str
    speaker: str | None
    meta: dict
    audio_path: Path | None
    energy: np.ndarray
    energy_rate: float
    face: dict[str, np.ndarray] | None
    frame_size: tuple[int, int]
    speech: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return float(self.meta.get("duration_s", 0.0))

    @property
    def source(self) -> str:
        """The folder of the media file as the corpus names it (:func:`source_folder`)."""
        return source_folder(self.meta.get("relpath", ""))


def source_folder(relpath: str) -> str:
    """The folder of a media file as the corpus names it (``with_audio/grid`` for ``with_audio/grid/a.mpg``):
    the median groups' fallback for clips whose speaker is unknown (``pretext.tasks.labelling.resolve_group``)."""
    return PurePosixPath(str(relpath).replace("\\", "/")).parent.as_posix()


def load_media(out: str | Path, item_id: str) -> MediaSignals:
    """Signals of ``item_id`` from the extraction folder ``out``."""
    folder = store.item_dir(out, item_id)
    meta = store.read_json(folder / store.META_FILE)
    audio = folder / store.AUDIO_FILE
    energy_file = folder / store.ENERGY_FILE
    face_dir = folder / store.FACE_DIR
    return MediaSignals(
        id=item_id,
        speaker=meta.get("speaker"),
        meta=meta,
        audio_path=audio if audio.exists() else None,
        energy=np.load(energy_file) if energy_file.exists() else np.zeros(0, dtype=np.float32),
        energy_rate=float(meta.get("energy_rate_hz", 100.0)),
        face=load_face_arrays(face_dir) if face_dir.is_dir() else None,
        frame_size=(int(meta.get("frame_width", 0)), int(meta.get("frame_height", 0))),
    )


def list_done_items(out: str | Path) -> list[str]:
    """Ids of all finished items of an extraction folder, sorted."""
    items = Path(out) / store.ITEMS_DIR
    if not items.is_dir():
        return []
    return sorted(p.name for p in items.iterdir() if (p / store.META_FILE).exists())
