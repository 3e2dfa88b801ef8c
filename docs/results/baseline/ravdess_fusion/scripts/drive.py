"""Issue 24 measurement driver (H8): audio-only pool -> extract -> label -> pretrain (cnn+stats, energy,acoustic).
Reuses experiments.scaling's functions; resumable; one step per call."""
import json, sys, time
from pathlib import Path
import pandas as pd
from data_prep import build_label_config, label_corpus, load_segments
from data_prep.extract import ExtractOptions, extract_corpus
from data_prep.segments import CONFIG_FILE, SEGMENTS_FILE
from avpretext.common.io import write_atomic, write_bytes_atomic, write_json_atomic
import experiments.scaling as scaling
from pretext.train import TrainConfig, train

WORK = Path("/work/runs/issue24")
SHARED = Path("/work/shared")
# The audio-only part of the scaling pool (BAVED is evaluated, so it stays out; RAVDESS is not in this folder).
scaling.POOL = (("speech_unlabelled/manifest.csv", ("librispeech", "ljspeech", "urdu_read", "voice_samples", "tess")),)
ENC = dict(scaling.ENCODERS["cnn"], pooling="stats")


def timed(name, fn):
    t = time.time(); fn(); dt = time.time() - t
    path = WORK / "timings.json"
    d = json.loads(path.read_text()) if path.exists() else {}
    d[name] = d.get(name, 0) + dt
    path.write_text(json.dumps(d, indent=1)); print(name, f"{dt:.0f}s", flush=True)


def do_prepare():
    scaling.prepare(WORK, SHARED)  # ravdess.csv, baved.csv


def do_extract():
    extract_corpus(scaling.pool_manifest(WORK, SHARED), WORK / "pool_extract", ExtractOptions(max_fps=10),
                   workers=2, progress=False)


def do_subset():
    """The longest prefix of the items in hashed order (experiments.scaling.rung_table's order) whose LLD cache
    prewarm.py has filled: a random, nested subset of whole media items, linked into WORK/pool_subset."""
    import os, shutil, zlib
    from pretext.tasks.acoustic import lld_path
    items = sorted((p for p in (WORK / "pool_extract" / "items").iterdir() if (p / "meta.json").exists()),
                   key=lambda p: zlib.crc32(p.name.encode()))
    prefix = []
    for item in items:
        if not lld_path(item / "audio.flac").exists():
            break
        prefix.append(item)
    sub = WORK / "pool_subset"
    (sub / "items").mkdir(parents=True, exist_ok=True)
    shutil.copy(WORK / "pool_extract" / "extract_config.json", sub / "extract_config.json")
    for item in prefix:
        link = sub / "items" / item.name
        if not link.exists():
            os.symlink(item.resolve(), link, target_is_directory=True)
    print("subset", len(prefix), "of", len(items), "items")


def do_label():
    config = build_label_config({"tasks": ["energy", "acoustic", "cluster"],
                                 "segmentation": {"mode": "auto", "min_s": 1.0}})
    label_corpus(WORK / "pool_subset", config, progress=False)


def do_pretrain(name, tasks, steps, eval_every):
    run = WORK / "pretrain" / name
    data = WORK / "pool_subset"
    table = load_segments(data)
    write_json_atomic(WORK / "pretrain_data.json", {"segments": len(table), "media": int(table["media_id"].nunique()),
                                                 "hours": float(table["duration"].sum() / 3600)})
    train(TrainConfig(data=str(data), tasks=tasks, encoder="cnn", encoder_options=ENC, out=str(run),
                      max_steps=steps, batch_size=16, lr=1e-3, warmup_steps=min(200, steps // 10), max_seconds=3.0,
                      eval_every=eval_every, checkpoint_every=eval_every, log_every=20, num_workers=2,
                      report_to="none", resume=(run / "config.json").exists()))


if __name__ == "__main__":
    step = sys.argv[1]
    if step == "pretrain":
        name, tasks, steps, ev = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        timed(f"pretrain-{name}", lambda: do_pretrain(name, tasks, steps, ev))
    else:
        timed(step, globals()[f"do_{step}"])
