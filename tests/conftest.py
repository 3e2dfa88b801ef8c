"""Shared fixtures: the real data beside the repository (skipped with a reason when absent), the packaged
face model and synthetic media written by the tests themselves."""
from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# AVPRETEXT_SHARED=/nonexistent runs the suite as a fresh clone without the shared data folder would.
SHARED = Path(os.environ.get("AVPRETEXT_SHARED") or REPO.parent / "shared")
TALKING_FACES = SHARED / "data" / "talking_faces"
RAVDESS = SHARED / "data" / "ravdess"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (the shared data folder sits beside the repository in CI; "
                    "a fresh clone does not have it)")
    return path


def run_main(main, args, capsys) -> subprocess.CompletedProcess:
    """``main(args)`` of a command, called in this process, as (returncode, stdout, stderr) like its command line.

    For the many input-error cases of one command: each would pay a new interpreter's imports (torch,
    accelerate: 3-5 s) for a check of the command's own validation. A usage error's SystemExit is its exit
    code; warnings are written to stderr as a fresh interpreter would (pytest would otherwise keep them), so
    "no torch warning" checks still see them. An unexpected exception propagates and fails the test, as its
    traceback on stderr would. Each test file still runs its command for real at least once.
    """
    capsys.readouterr()
    message = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code
            if code is not None and not isinstance(code, int):  # sys.exit("text") prints the text, exits 1
                code, message = 1, f"{code}\n"
    out, err = capsys.readouterr()
    err += message
    err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught)
    return subprocess.CompletedProcess(list(map(str, args)), code or 0, out, err)


@pytest.fixture(scope="session")
def face_model() -> Path:
    """mediapipe's face_landmarker.task as shipped inside the package (never skipped)."""
    from data_prep.face_model import MODEL_SHA256, packaged_model_path, sha256_of

    path = packaged_model_path()
    assert sha256_of(path) == MODEL_SHA256, f"the packaged face model {path} is damaged"
    return path


@pytest.fixture(scope="session")
def talking_faces() -> Path:
    return _require(TALKING_FACES, "real talking-face clips")


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """Three short talking-face videos (moving, still, swaying head) and one audio-only file."""
    from avpretext import synthetic

    root = tmp_path_factory.mktemp("synthetic_corpus")
    synthetic.write_talking_face(root / "moving.mp4", 4.0, jaw_amplitude=10.0, seed=1)
    synthetic.write_talking_face(root / "still.mp4", 4.0, jaw_amplitude=0.0, seed=2)
    synthetic.write_talking_face(root / "sub dir" / "swaying é.mp4", 3.0, jaw_amplitude=4.0, head_motion=6.0,
                                 seed=3)
    synthetic.write_media(root / "podcast.wav", audio=synthetic.AudioTrack(synthetic.voiced_speech(5.0, seed=4),
                                                                         codec="pcm_s16le"))
    return root
