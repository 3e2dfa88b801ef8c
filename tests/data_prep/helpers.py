"""Helpers for comparing extraction outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from data_prep import store
from data_prep.executors import make_executor
from data_prep.extract import ExtractOptions, extract_corpus


def run_extract(source, out, face_model, workers=1, executor="processes", **kwargs):
    """``extract_corpus`` with the face model given, ``options`` a dict of :class:`ExtractOptions` fields, and the
    executor chosen by name as ``data_prep extract --executor`` does."""
    options = ExtractOptions(face_model=str(face_model), **kwargs.pop("options", {}))
    return extract_corpus(source, out, options, executor=make_executor(executor, workers), progress=False,
                          **kwargs)


def item_ids(out: Path) -> set[str]:
    root = Path(out) / store.ITEMS_DIR
    return {p.name for p in root.iterdir()} if root.exists() else set()


def assert_same_outputs(out_a: Path, out_b: Path) -> None:
    """Every item's arrays, audio and meta (except timings) are identical."""
    ids = item_ids(out_a)
    assert ids == item_ids(out_b)
    assert ids, "no items to compare"
    for item_id in ids:
        a, b = store.item_dir(out_a, item_id), store.item_dir(out_b, item_id)
        files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
        files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
        assert files_a == files_b, item_id
        for rel in files_a:
            if rel.endswith(".npy"):
                np.testing.assert_array_equal(np.load(a / rel), np.load(b / rel), err_msg=f"{item_id}/{rel}")
            elif rel.endswith(".flac"):
                np.testing.assert_array_equal(sf.read(a / rel)[0], sf.read(b / rel)[0], err_msg=item_id)
        meta_a, meta_b = store.read_json(a / store.META_FILE), store.read_json(b / store.META_FILE)
        meta_a.pop("timings_s"), meta_b.pop("timings_s")
        assert meta_a == meta_b, item_id
