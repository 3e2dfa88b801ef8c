"""eGeMAPS (and ComParE) functional extraction speed beside the project's extract, on the same files, in one run.

Run:  .venv/bin/python -m benchmarks.opensmile_speed [--shared ../shared] [--files 200] \
          [--work /tmp/avpretext_bench_smile]

Prints files per second and times real time (seconds of audio per wall second) of, side by side and each in
one process: ``data_prep extract`` (``extract_corpus --workers 1``: decoding and the audio signals; audio-only
files have no face work) and :class:`finetune.opensmile_features.Functionals` with no cache (reading the file
at 16 kHz and computing eGeMAPSv02, then ComParE_2016, functionals). The files are the first ``--files``
RAVDESS recordings of the shared data folder when it is present, else generated speech-like audio (3 s each).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import soundfile as sf

from avpretext import synthetic
from avpretext.common.cli import CommandParser
from data_prep.extract import ExtractOptions, extract_corpus
from finetune.opensmile_features import FEATURE_SETS, Functionals

REPO = Path(__file__).resolve().parents[1]


def audio_files(shared: Path, work: Path, count: int) -> tuple[list[Path], str]:
    """(files, description): real RAVDESS recordings, or generated ones when the shared folder is absent."""
    real = sorted((shared / "data" / "ravdess").rglob("*.flac")) + sorted((shared / "data" / "ravdess").rglob("*.wav"))
    if real:
        return real[:count], f"{min(count, len(real))} real RAVDESS recordings"
    folder = work / "generated"
    files = []
    for i in range(count):
        path = folder / f"speech_{i:04d}.wav"
        if not path.exists():
            synthetic.write_media(path, audio=synthetic.AudioTrack(synthetic.voiced_speech(3.0, seed=i),
                                                                   codec="pcm_s16le"))
        files.append(path)
    return files, f"{count} generated speech-like files (no shared data folder)"


def main() -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("/tmp/avpretext_bench_smile"))
    args = parser.parse_args()
    files, what = audio_files(args.shared, args.work, args.files)
    audio_s = sum(sf.info(str(f)).duration for f in files)
    rows = {}

    manifest = args.work / "files.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"path": [str(f) for f in files]}).to_csv(manifest, index=False)
    shutil.rmtree(args.work / "extract", ignore_errors=True)
    started = time.perf_counter()
    summary = extract_corpus(manifest, args.work / "extract", ExtractOptions(), progress=False)
    rows["data_prep extract (--workers 1)"] = (time.perf_counter() - started, summary.done)

    for name in FEATURE_SETS:
        functionals = Functionals(name, cache=False)
        started = time.perf_counter()
        values, skipped = functionals.compute(files)
        rows[f"{FEATURE_SETS[name]} functionals ({functionals.dim})"] = (time.perf_counter() - started,
                                                                          len(files) - len(skipped))

    print(f"{what}, {audio_s:.0f} s of audio, one process each")
    for name, (wall, done) in rows.items():
        print(f"  {name:34s} {done:5d} files  wall {wall:7.1f} s  {done / wall:7.1f} files/s  "
              f"{audio_s / wall:7.1f}x real time")


if __name__ == "__main__":
    main()
