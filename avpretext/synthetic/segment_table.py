"""A labelled segment table written without video or face model, for training tests and demos."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from avpretext.common.io import write_atomic, write_json_atomic
from data_prep.label.config import build_label_config
from data_prep.segments import LABEL_CONFIG_FILE, SEGMENTS_FILE
from pretext.tasks import get_task
from pretext.tasks.base import DemoMedia

from .speech import SAMPLE_RATE, voiced_speech


def write_segment_table(folder: str | Path, tasks: tuple[str, ...] = ("energy", "face", "au"), media: int = 6,
                        segments_per_media: int = 4, speakers: int = 3, seed: int = 0) -> Path:
    """A ``data_prep label``-style folder written directly, without any video: short audio files, their
    segment table (``segments.parquet``) and the resolved ``label_config.json``.

    For training tests and demos that need labelled segments but not the face model. Media ``m`` is one
    16 kHz FLAC file (``folder/audio/media_<m>.flac``) of ``segments_per_media`` voiced segments of 2.5-3.5 s
    separated by 0.5 s pauses, alternating quiet (about -32 dBFS) and loud (about -14 dBFS) speech; speakers
    ``speaker0``, ``speaker1``, ... take the media in turn. The values a real run would measure are drawn
    for the built-in tasks (``energy_value`` is measured on the audio; lively, loud segments get faster
    faces and an emotion in their ``au_frac_<class>``), with gaps as in real data: the last media has no face
    at all and one segment of the first media a face in only 30% of its frames, so their face and au masks
    are False. Each task gives its own values (:meth:`pretext.tasks.base.PretextTask.demo_values`; a plug-in
    that reads no signal needs nothing more, as ``tests.pretext.plugin_task:DurationTask``). Labels and masks
    are then assigned by each task's own ``assign_labels``, as ``data_prep label`` does, so the table has the
    same columns.

    Returns:
        ``folder``, ready for ``pretext/train.py --data``.
    """
    folder = Path(folder)
    config = build_label_config({"tasks": list(tasks)})
    task_of = {name: get_task(name) for name in config.tasks}
    rng = np.random.default_rng(seed)
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    rows = []
    for m in range(media):
        media_id = f"media_{m:02d}"
        audio_path = folder / "audio" / f"{media_id}.flac"
        phase = int(rng.integers(0, 2))
        pieces, segments, lively, position = [], [], [], 0.0
        for k in range(segments_per_media):
            loud = (k + phase) % 2 == 1
            duration = round(float(rng.uniform(2.5, 3.5)), 2)
            level = (-14.0 if loud else -32.0) + rng.uniform(-3, 3)
            pieces += [voiced_speech(duration, level, seed=seed * 1000 + m * 100 + k, pauses=False), gap]
            segments.append((round(position, 3), round(position + duration, 3)))
            lively.append(loud)
            position += duration + len(gap) / SAMPLE_RATE
        audio = np.concatenate(pieces)
        audio_path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(audio_path, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        has_face = m < media - 1  # the last media is as an audio-only file: no face frames
        coverage = [(0.3 if (m == 0 and k == 0) else 1.0) if has_face else 0.0 for k in range(len(segments))]
        demo = DemoMedia(m, audio, segments, lively, coverage, rng)
        values = {name: task.demo_values(demo, config.task_configs[name]) for name, task in task_of.items()}
        for k, (start, end) in enumerate(segments):
            row = {"segment_id": f"{media_id}_{k:04d}", "media_id": media_id, "speaker": f"speaker{m % speakers}",
                   "source": "audio", "audio_path": str(audio_path.resolve()), "start": start, "end": end,
                   "duration": round(end - start, 3)}
            for name in task_of:
                row.update(values[name][k])
            rows.append(row)
    table = pd.DataFrame(rows)
    for name, task in task_of.items():
        table, _ = task.assign_labels(table, config.task_configs[name])
    table["config_hash"] = config.hash()
    write_json_atomic(folder / LABEL_CONFIG_FILE, config.to_dict())
    write_atomic(folder / SEGMENTS_FILE, lambda tmp: table.to_parquet(tmp, index=False))
    return folder
