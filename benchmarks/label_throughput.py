"""Extraction throughput, stage shares, overhead against a bare loop, and memory against video length.

Run:  .venv/bin/python -m benchmarks.label_throughput [--shared ../shared] [--work /tmp/avpretext_bench]

Prints, in one run (so machine noise affects all rows alike):
* real-time factor (media seconds per wall second) of `extract_corpus` with 1 and 2 workers on real clips
  totalling at least 5 minutes, and the 2-worker speed-up;
* the share of per-item time in decode, face model, audio and writing;
* the ratio of the pipeline's throughput to a bare loop of PyAV decode + FaceLandmarker on the same frames;
* peak RSS of one worker on a 30 s and a 10 min video (built by concatenating the real clips).
Targets: pipeline/bare >= 0.9; 2 workers >= 1.8x one; RSS(10 min) <= 1.2x RSS(30 s).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import mediapipe as mp
import numpy as np

from avpretext.common.cli import CommandParser
from avpretext.synthetic import AudioTrack, VideoTrack, write_media
from data_prep import store
from data_prep.decode import AudioInfo, FrameSelector, iter_audio_chunks, scaled_size
from data_prep.executors import ProcessExecutor
from data_prep.extract import ExtractOptions, extract_corpus, extract_item, init_worker
from data_prep.face_model import open_face_landmarker
from data_prep.sources import discover_media

REPO = Path(__file__).resolve().parents[1]

MIN_CORPUS_S = 300.0


def build_corpus(shared: Path, work: Path) -> tuple[Path, float]:
    """Symlinks to the real with-audio clips, repeated until they total at least 5 minutes."""
    corpus = work / "corpus"
    rows = [r for r in csv.DictReader(open(shared / "data/talking_faces/manifest.csv")) if r["has_audio"] == "True"]
    total = 0.0
    if corpus.exists():
        shutil.rmtree(corpus)
    copy = 0
    while total < MIN_CORPUS_S:
        for row in rows:
            link = corpus / f"copy{copy}" / row["path"]
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((shared / "data/talking_faces" / row["path"]).resolve())
            total += float(row["duration_s"])
        copy += 1
    return corpus, total


def build_long_video(shared: Path, path: Path, duration_s: float, size: int = 480) -> Path:
    """One video made of the real clips played one after another (frames letterboxed to size x size)."""
    if path.exists():
        return path
    rows = [r for r in csv.DictReader(open(shared / "data/talking_faces/manifest.csv")) if r["has_audio"] == "True"]
    fps = 25.0
    frames_needed = int(duration_s * fps)

    def clip_frames():
        while True:
            for row in rows:
                src = str(shared / "data/talking_faces" / row["path"])
                selector = FrameSelector(fps)
                with av.open(src) as container:
                    stream = container.streams.video[0]
                    try:
                        for frame in container.decode(stream):
                            if frame.pts is None or not selector.keep(float(frame.pts * stream.time_base)):
                                continue
                            yield _letterbox(frame.to_ndarray(format="rgb24"), size)
                    except av.FFmpegError:
                        continue

    def clip_audio():
        while True:
            for row in rows:
                for chunk in iter_audio_chunks(str(shared / "data/talking_faces" / row["path"]), AudioInfo()):
                    yield chunk

    frame_source = clip_frames()
    audio = []
    got = 0
    for chunk in clip_audio():
        audio.append(chunk)
        got += len(chunk)
        if got >= duration_s * 16000:
            break
    audio = np.concatenate(audio)[: int(duration_s * 16000)]
    cache: dict[int, np.ndarray] = {}

    def frame_at(i: int) -> np.ndarray:  # write_media asks for frames in order (0 first, twice)
        if i not in cache:
            cache.clear()
            cache[i] = next(frame_source)
        return cache[i]

    return write_media(path, VideoTrack(frame_at, frames_needed, fps), AudioTrack(audio))


def _letterbox(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(rgb, (max(2, int(w * scale)), max(2, int(h * scale))), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size, 3), np.uint8)
    y, x = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    out[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return out


def run_pipeline(corpus: Path, out: Path, model: Path, workers: int) -> tuple[float, dict]:
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    summary = extract_corpus(corpus, out, ExtractOptions(face_model=str(model)), executor=ProcessExecutor(workers),
                             progress=False)
    wall = time.perf_counter() - started
    assert not summary.failed, summary.failed
    stages = {"decode": 0.0, "face": 0.0, "audio": 0.0, "write": 0.0}
    for item in (out / store.ITEMS_DIR).iterdir():
        timings = store.read_json(item / store.META_FILE)["timings_s"]
        for key in stages:
            stages[key] += timings[key]
    return wall, stages


def bare_loop_one(path: Path, model_bytes: bytes, options: ExtractOptions) -> int:
    """PyAV decode + FaceLandmarker over the frames the pipeline analyses, nothing else. Returns frames."""
    frames = 0
    with av.open(str(path)) as container, open_face_landmarker(model_bytes, options.num_faces) as landmarker:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        selector = FrameSelector(min(float(stream.average_rate or 25), options.max_fps))
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if not selector.keep(t):
                    continue
                w, h = scaled_size(frame.width, frame.height, options.max_side)
                rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24", width=w, height=h))
                landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), int(round(t * 1000)))
                frames += 1
        except av.FFmpegError:
            pass
    return frames


def pipeline_vs_bare(corpus: Path, model: Path, work: Path) -> tuple[float, float, int]:
    """Per clip, the bare loop then ``extract_item`` (the pipeline's per-item job), alternating so that
    machine noise hits both alike. Returns (bare seconds, pipeline seconds, frames)."""
    options = ExtractOptions(face_model=str(model))
    state = init_worker(options)
    out = work / "out_item"
    shutil.rmtree(out, ignore_errors=True)
    bare_s = pipe_s = 0.0
    frames = 0
    for item in discover_media(corpus):
        t0 = time.perf_counter()
        frames += bare_loop_one(Path(item.path), state.model_bytes, options)
        t1 = time.perf_counter()
        extract_item(state, item, out)
        t2 = time.perf_counter()
        bare_s += t1 - t0
        pipe_s += t2 - t1
    return bare_s, pipe_s, frames


def rss_mb(video: Path, model: Path, out: Path) -> tuple[float, float]:
    """(peak RSS, RSS right after the item finished) of one serial extraction of ``video`` in a fresh
    process, in MB. The second shows whether anything grew with the video even if the peak came earlier."""
    if out.exists():
        shutil.rmtree(out)
    single = out.parent / (out.name + "_src")
    shutil.rmtree(single, ignore_errors=True)
    single.mkdir(parents=True)
    (single / video.name).symlink_to(video.resolve())
    code = (
        "import resource, sys; from data_prep.extract import ExtractOptions, extract_corpus;"
        f"s = extract_corpus({str(single)!r}, {str(out)!r}, ExtractOptions(face_model={str(model)!r}), progress=False);"
        "assert s.done == 1, s.failed;"
        "now = [l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1];"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, int(now) / 1024)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    peak, now = result.stdout.strip().splitlines()[-1].split()
    return float(peak), float(now)


def main() -> None:
    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--work", type=Path, default=Path("/tmp/avpretext_bench"))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    model = args.shared / "models/face_landmarker.task"
    args.work.mkdir(parents=True, exist_ok=True)
    corpus, media_s = build_corpus(args.shared, args.work)
    print(f"corpus: {sum(1 for p in corpus.rglob('*') if p.is_file())} real clips, {media_s:.0f} s of media")

    bare_s, item_s, bare_frames = pipeline_vs_bare(corpus, model, args.work)
    one_s, stages = run_pipeline(corpus, args.work / "out1", model, workers=1)
    two_s, _ = run_pipeline(corpus, args.work / "out2", model, workers=2)
    total = sum(stages.values())
    print(f"{'':44s}{'wall s':>9s}{'media s/s':>11s}")
    print(f"{'bare PyAV + FaceLandmarker loop':44s}{bare_s:9.1f}{media_s / bare_s:11.2f}   ({bare_frames} frames)")
    print(f"{'extract_item, alternating with the bare loop':44s}{item_s:9.1f}{media_s / item_s:11.2f}")
    print(f"{'extract_corpus, 1 worker':44s}{one_s:9.1f}{media_s / one_s:11.2f}")
    print(f"{'extract_corpus, 2 workers':44s}{two_s:9.1f}{media_s / two_s:11.2f}")
    print(f"pipeline / bare throughput: {bare_s / item_s:.3f} per item, {bare_s / one_s:.3f} whole 1-worker run"
          "   (target >= 0.9)")
    print(f"2 workers / 1 worker:       {one_s / two_s:.3f}   (target >= 1.8)")
    print("stage shares of item time:  " + ", ".join(f"{k} {v / total:.1%}" for k, v in stages.items()))

    short = build_long_video(args.shared, args.work / "real_30s.mp4", 30.0)
    long = build_long_video(args.shared, args.work / "real_10min.mp4", 600.0)
    rss_short, end_short = rss_mb(short, model, args.work / "rss_short")
    rss_long, end_long = rss_mb(long, model, args.work / "rss_long")
    print(f"peak RSS, one worker: 30 s video {rss_short:.0f} MB, 10 min video {rss_long:.0f} MB, "
          f"ratio {rss_long / rss_short:.3f}   (target <= 1.2)")
    print(f"RSS after the item: 30 s video {end_short:.0f} MB, 10 min video {end_long:.0f} MB, "
          f"ratio {end_long / end_short:.3f}")
    if args.json:
        args.json.write_text(json.dumps({
            "media_s": media_s, "bare_s": bare_s, "item_s": item_s, "one_worker_s": one_s,
            "two_workers_s": two_s, "pipeline_over_bare": bare_s / item_s, "run_over_bare": bare_s / one_s, "speedup_2_workers": one_s / two_s,
            "stage_shares": {k: v / total for k, v in stages.items()}, "rss_30s_mb": rss_short,
            "rss_10min_mb": rss_long, "rss_end_30s_mb": end_short, "rss_end_10min_mb": end_long}, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("GLOG_minloglevel", "2")
    main()
