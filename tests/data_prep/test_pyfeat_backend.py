"""py-feat AU backend: real detector calls, or a visible skip when py-feat or its weights are not here."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep import store
from data_prep.aus_pyfeat import PyFeatUnavailable, pyfeat_weights_available
from data_prep.face_signals import load_face_arrays

from .helpers import run_extract


def test_pyfeat_backend_writes_au_probabilities(synthetic_corpus, face_model, tmp_path):
    available, reason = pyfeat_weights_available()
    if not available:
        pytest.skip(reason)
    run_extract(synthetic_corpus / "sub dir", tmp_path / "out", face_model,
                options={"au_backend": "pyfeat", "max_fps": 5})
    (item,) = (tmp_path / "out" / store.ITEMS_DIR).iterdir()
    face = load_face_arrays(item / store.FACE_DIR)
    meta = store.read_json(item / store.META_FILE)
    assert "AU12" in meta["pyfeat_au_names"]
    assert face["aus_pyfeat"].shape == (meta["frames"], len(meta["pyfeat_au_names"]))
    assert np.isfinite(face["aus_pyfeat"]).mean() > 0.9


def test_unavailable_pyfeat_is_a_clear_error_before_any_work(synthetic_corpus, face_model, tmp_path):
    available, _ = pyfeat_weights_available()
    if available:
        pytest.skip("py-feat and its weights are available here")
    with pytest.raises(PyFeatUnavailable, match="py-feat"):
        run_extract(synthetic_corpus, tmp_path / "out", face_model, options={"au_backend": "pyfeat"})
    assert not (tmp_path / "out" / store.ITEMS_DIR).exists()
