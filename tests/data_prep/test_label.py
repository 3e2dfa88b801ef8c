"""Labelling: segments, each task's labels on synthetic media with known answers, masks, config."""
from __future__ import annotations

import json

import numpy as np
import pytest

from avpretext import synthetic
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus, segment_speech
from data_prep.segments import load_segments

from .helpers import run_extract

# Extraction runs of several videos (or a Ray cluster): left out of the quick check `-m "not slow"`.
pytestmark = pytest.mark.slow

SEGMENT_S = 3.0


def _alternating_video(path, seed=0):
    """12 s: loud speech in seconds 3-6 and 9-12; the jaw moves only in seconds 6-12; the head sways always."""
    face = synthetic.face_image()
    fps = 25

    def frame(i):
        t = i / fps
        jaw = 10.0 * 0.5 * (1 - np.cos(2 * np.pi * 4 * t)) if t >= 6 else 0.0
        sway = (5 * np.sin(2 * np.pi * 0.4 * t), 2 * np.sin(2 * np.pi * 0.3 * t))
        return synthetic.talking_face_frame(face, jaw, sway)

    def level(t):
        return np.where((t % 6) >= 3, -12.0, -30.0)

    audio = synthetic.voiced_speech(12.0, level, seed=seed, pauses=False)
    return synthetic.write_media(path, synthetic.VideoTrack(frame, 12 * fps, fps), synthetic.AudioTrack(audio))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, face_model):
    root = tmp_path_factory.mktemp("label_corpus")
    _alternating_video(root / "alternating.mp4")
    gray = np.full((120, 160, 3), 90, np.uint8)
    synthetic.write_media(root / "no_face.mp4", synthetic.VideoTrack(lambda i: gray, 12 * 25, 25),
                          synthetic.AudioTrack(synthetic.voiced_speech(12.0, seed=3, pauses=False)))
    out = tmp_path_factory.mktemp("label_out")
    run_extract(root, out, face_model)
    config = build_label_config({"segmentation": {"min_s": SEGMENT_S - 0.5, "max_s": SEGMENT_S}})
    result = label_corpus(out, config, progress=False)
    return result, out


def _segments_of(table, name):
    return table[table.media_id.str.startswith(name)].sort_values("start").reset_index(drop=True)


def test_louder_speech_gets_the_high_energy_label(labelled):
    result, _ = labelled
    seg = _segments_of(result.table, "alternating")
    assert len(seg) == 4
    assert seg.energy_label.tolist() == [0, 1, 0, 1]
    assert seg.energy_mask.all()


def test_moving_face_gets_higher_activation_than_still_face(labelled):
    """Jaw motion (seconds 6-12) counts; head sway, present throughout, is removed by the alignment."""
    result, _ = labelled
    seg = _segments_of(result.table, "alternating")
    assert seg.face_label.tolist() == [0, 0, 1, 1]
    assert seg.face_value[2:].min() > 2 * seg.face_value[:2].max()


def test_missing_face_is_masked_never_guessed(labelled):
    result, _ = labelled
    seg = _segments_of(result.table, "no_face")
    assert len(seg) == 4
    assert not seg.face_mask.any() and not seg.au_mask.any()
    assert (seg.face_label == -1).all() and (seg.au_label == -1).all()
    assert seg.energy_mask.all()  # audio-derived labels do not need a face


def test_segment_table_round_trip_and_stats(labelled):
    result, out = labelled
    table = load_segments(out)
    assert len(table) == len(result.table) == 8
    assert {"segment_id", "media_id", "audio_path", "start", "end", "config_hash"} <= set(table.columns)
    assert table.segment_id.is_unique and (table.config_hash == result.stats["config_hash"]).all()
    assert ((table.end - table.start) <= SEGMENT_S + 1e-6).all()
    stats = json.loads((out / "label_stats.json").read_text())
    assert stats["tasks"]["energy"]["class_counts"] == {"low": 4, "high": 4}
    assert stats["tasks"]["face"]["labelled"] == 4


def test_relabel_with_a_new_threshold_reads_only_stored_signals(labelled, tmp_path):
    _, out = labelled
    config = build_label_config({"segmentation": {"mode": "clip"}, "energy": {"statistic": "std_db"}})
    result = label_corpus(out, config, dest=tmp_path, progress=False)
    assert len(result.table) == 2  # one segment per clip
    assert result.stats["config_hash"] != build_label_config().hash()


def test_segment_speech_windows_and_clip_modes():
    rate = 100.0
    speech = np.zeros(2500, dtype=bool)
    speech[100:1350] = True  # 12.5 s region...
    speech[1400:1500] = True  # ...bridged with this one (0.5 s pause <= 1 s): 14 s -> two 7 s windows
    speech[2000:2200] = True  # 2 s region, alone: shorter than min_s, dropped
    windows = segment_speech(speech, rate, build_label_config().segmentation)
    assert windows == [(1.0, 8.0), (8.0, 15.0)]
    clip = segment_speech(speech, rate, build_label_config({"segmentation": {"mode": "clip"}}).segmentation)
    assert clip == [(1.0, 22.0)]


def test_config_rejects_unknown_keys_and_sections(tmp_path):
    with pytest.raises(ValueError, match="unknown keys in \\[energy\\]"):
        build_label_config({"energy": {"treshold": 3}})
    with pytest.raises(ValueError, match="unknown config sections"):
        build_label_config({"enrgy": {}})
    with pytest.raises(ValueError, match="unknown pretext task 'nope'"):
        build_label_config({"tasks": ["energy", "nope"]})
    bad = tmp_path / "bad.toml"
    bad.write_text("[face]\nregion = 'ears'\n")
    from data_prep.label.config import load_label_config

    with pytest.raises(ValueError, match="bad.toml: face.region 'ears': choose from"):
        load_label_config(bad)  # checked when the config is read, not later by the face task


def test_loaded_media_hold_no_open_files(labelled):
    """Labelling keeps every item of a corpus loaded at once; eagerly memory-mapped face arrays (one file
    descriptor each) ran out of descriptors on 3,000 real videos. Loaded items must hold none."""
    import os

    from data_prep.signals import list_done_items, load_media

    _, out = labelled
    ids = list_done_items(out)
    before = len(os.listdir("/proc/self/fd"))
    medias = [load_media(out, i) for i in ids for _ in range(50)]
    assert len(os.listdir("/proc/self/fd")) == before
    face = next(m.face for m in medias if m.face is not None)
    assert face["present"].shape[0] == face["landmarks"].shape[0] > 0 and "aus" in face
