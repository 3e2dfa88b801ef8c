"""Finding the media files of a corpus and giving each one a stable, unique id.

A corpus is either a folder (searched recursively) or a CSV manifest with a ``path`` column (optional
``id`` and ``speaker`` columns). Ids are derived from the path relative to the corpus root, so two
``clip.mp4`` files in different folders never collide, and the same corpus always yields the same ids
(which is what makes reruns, shards and parallel runs agree).

Discovery never descends into an extraction output (the ``--out`` folder, or any folder holding an
``extract_config.json``): an output inside the input folder would otherwise be ingested by the next run
(its ``audio.flac`` files are media). Paths with a media extension that are not regular files (a folder
named ``x.mp4``, a broken symbolic link, a named pipe) are still listed, so that extraction reports each one
as a failed item with :func:`not_a_file_reason` instead of dropping it silently.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import stat
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".ts", ".3gp", ".ogv"}
)
# Audio-only inputs (podcast-like corpora): extracted like videos, with face signals absent.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS
# Still photographs (a folder of faces is a corpus too): one-frame items with face signals and no audio.
# Kept apart from MEDIA_EXTENSIONS, which names files that may carry speech (what prediction reads).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
EXTRACTABLE_EXTENSIONS = MEDIA_EXTENSIONS | IMAGE_EXTENSIONS
# Written by ``data_prep extract`` at the top of its output folder; marks a folder discovery must skip.
EXTRACTION_MARKER = "extract_config.json"


@dataclass(frozen=True)
class MediaItem:
    """One input file of a corpus.

    Attributes:
        id: unique, filesystem-safe, stable id (slug of the relative path + short hash).
        path: absolute path of the file.
        relpath: path relative to the corpus root (or as written in the manifest).
        speaker: speaker id when the manifest gives one, else None.
    """

    id: str
    path: str
    relpath: str
    speaker: str | None = None


def make_item_id(relpath: str) -> str:
    """A readable, unique id for a relative path.

    The slug keeps ASCII letters, digits, ``-`` and ``.``; everything else becomes ``_``. Because the slug
    can map different paths to one string ("a b.mp4" and "a_b.mp4"), an 8-hex hash of the exact relative
    path is appended: ``"with_audio/grid/s1 clip.mp4"`` becomes ``"with_audio_grid_s1_clip.mp4-<8 hex>"``.
    """
    normalized = unicodedata.normalize("NFC", relpath.replace("\\", "/"))
    slug = re.sub(r"[^A-Za-z0-9.\-]+", "_", normalized).strip("_.")[-80:] or "item"
    digest = hashlib.sha1(normalized.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}"


def discover_media(source: str | Path, exclude: tuple[str | Path, ...] = ()) -> list[MediaItem]:
    """List the media files of a corpus, sorted by id.

    Args:
        source: a folder (searched recursively for video, audio and image extensions) or a CSV manifest with a
            ``path`` column; relative manifest paths are taken relative to the manifest's folder.
        exclude: folders not to search (the run's output folder); folders holding an
            :data:`EXTRACTION_MARKER` are never searched either.

    Raises:
        FileNotFoundError: the source does not exist.
        ValueError: a manifest without a ``path`` column, or with duplicate ids.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such folder or manifest")
    if source.is_dir():
        items = [_item(p, p.relative_to(source).as_posix()) for p in _walk_media(source, exclude)]
    else:
        items = _read_manifest(source)
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"{source}: duplicate ids {dupes[:5]}")
    return sorted(items, key=lambda it: it.id)


def _walk_media(root: Path, exclude: tuple[str | Path, ...]) -> list[Path]:
    """Every path under ``root`` with a media extension, whatever its type, outside extraction outputs."""
    skip = {os.path.realpath(p) for p in exclude}
    found = []
    for folder, dirs, files in os.walk(root):  # symbolic links to folders are listed, not followed
        kept = []
        for name in sorted(dirs):
            path = os.path.join(folder, name)
            if os.path.realpath(path) in skip or os.path.isfile(os.path.join(path, EXTRACTION_MARKER)):
                continue
            kept.append(name)
        dirs[:] = kept
        # A folder with a media name is listed (it fails with its reason) and still searched.
        found += [Path(folder) / n for n in (*kept, *files) if Path(n).suffix.lower() in EXTRACTABLE_EXTENSIONS]
    return found


def not_a_file_reason(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a media file (missing, a folder, a broken symbolic link, a pipe or
    device), or None for a regular file (or a symbolic link to one)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return f"broken symbolic link (its target {os.readlink(path)} does not exist)"
        return "file not found"
    except OSError as err:
        return f"cannot access ({err.strerror})"
    if stat.S_ISDIR(mode):
        return "a folder, not a media file"
    if not stat.S_ISREG(mode):
        kind = "named pipe" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        return f"not a regular file (a {kind})"  # opening a pipe would block the worker forever
    return None


def _item(path: Path, relpath: str, speaker: str | None = None, item_id: str | None = None) -> MediaItem:
    return MediaItem(item_id or make_item_id(relpath), str(path.absolute()), relpath, speaker or None)


def _read_manifest(manifest: Path) -> list[MediaItem]:
    with open(manifest, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValueError(f"{manifest}: a manifest needs a 'path' column (has {reader.fieldnames})")
        rows = list(reader)
    items = []
    for row in rows:
        rel = row["path"]
        path = Path(rel) if Path(rel).is_absolute() else manifest.parent / rel
        items.append(_item(path, rel, row.get("speaker"), row.get("id") or None))
    return items


def select_shard(items: list[MediaItem], shard_index: int, num_shards: int) -> list[MediaItem]:
    """The items that shard ``shard_index`` of ``num_shards`` owns.

    Assignment hashes the id, so an item keeps its shard when the corpus grows, and every item belongs
    to exactly one shard.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard {shard_index}/{num_shards}: need 0 <= I < N")
    return [it for it in items if zlib.crc32(it.id.encode()) % num_shards == shard_index]


def is_audio_only(path: str | Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def is_image(path: str | Path) -> bool:
    """A still photograph, read as one frame (by its extension, as audio-only files are)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS
