"""Pretext tasks' label derivations: registry, AU rule table, median splits."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from data_prep import geometry
from data_prep.aus import AU_NAMES
from encoders.base import EncoderOutput
from pretext.tasks import TASKS, get_task, parse_tasks, register_task
from pretext.tasks.au import AUConfig
from pretext.tasks.au_rules import classify_frames
from pretext.tasks.base import ClassificationTask, PretextTask, check_task_class
from pretext.tasks.labelling import median_split, resolve_group
from pretext.tasks.energy import EnergyConfig
from pretext.tasks.face import FaceConfig, landmark_speed, video_landmark_speed


def _frame(**active):
    row = np.zeros((1, len(AU_NAMES)), dtype=np.float32)
    for au, value in active.items():
        row[0, AU_NAMES.index(au)] = value
    return row


@pytest.mark.parametrize("emotion, aus", [
    ("happiness", {"AU06": 0.5, "AU12": 0.6}),
    ("sadness", {"AU01": 0.4, "AU04": 0.3}),
    ("sadness", {"AU04": 0.3, "AU15": 0.1}),
    ("surprise", {"AU01": 0.6, "AU02": 0.6, "AU05": 0.4}),
    ("fear", {"AU01": 0.6, "AU02": 0.6, "AU04": 0.3, "AU05": 0.4, "AU20": 0.3}),
    ("anger", {"AU04": 0.5, "AU07": 0.5, "AU23": 0.4}),
    ("disgust", {"AU09": 0.4, "AU17": 0.3}),
    ("neutral", {"AU26": 0.2, "AU25": 0.8}),  # talking: lips apart, jaw a little open
    ("neutral", {"AU12": 0.6}),  # a smile without the eyes is not a full happiness prototype
])
def test_every_rule_can_fire(emotion, aus):
    cfg = AUConfig()
    label = classify_frames(_frame(**aus), list(AU_NAMES), cfg)
    assert cfg.class_names[int(label[0])] == emotion


def test_rule_table_is_data():
    cfg = AUConfig(mapping="rules", rules={"joy": {"aus": ["AU12"], "min_active": 1}})
    assert cfg.class_names == ["neutral", "joy"]
    assert classify_frames(_frame(AU12=0.5), list(AU_NAMES), cfg).tolist() == [1]
    with pytest.raises(ValueError, match="without a threshold"):
        AUConfig(mapping="rules", rules={"x": {"aus": ["AU99"], "min_active": 1}})
    with pytest.raises(ValueError, match="set au.mapping = 'rules'"):
        AUConfig(rules={"joy": {"aus": ["AU12"], "min_active": 1}})  # the learned mapping would ignore it


def test_batch_classification_equals_frame_by_frame():
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 0.6, size=(200, len(AU_NAMES))).astype(np.float32)
    cfg = AUConfig()
    batch = classify_frames(frames, list(AU_NAMES), cfg)
    single = [int(classify_frames(frames[i:i + 1], list(AU_NAMES), cfg)[0]) for i in range(len(frames))]
    assert batch.tolist() == single
    assert len(set(single)) >= 4


def test_median_split_per_group_and_small_groups_masked():
    values = pd.Series([1.0, 2, 3, 4, 10, 20, 30, 40, 5, 6])
    groups = pd.Series(["a"] * 4 + ["b"] * 4 + ["c"] * 2)
    label, mask, norm = median_split(values, pd.Series(True, index=values.index), groups, min_group_size=4)
    assert label.tolist() == [0, 0, 1, 1, 0, 0, 1, 1, -1, -1]
    assert mask.tolist() == [True] * 8 + [False] * 2
    assert np.isnan(norm[8]) and norm[3] > 0 > norm[0]


def test_auto_group_prefers_speaker_then_video_then_corpus():
    table = pd.DataFrame({"speaker": ["s1"] * 4 + ["s2"] * 4, "media_id": list("aabbccdd")})
    assert resolve_group(table, "auto", 4)[0] == "speaker"
    assert resolve_group(table.assign(speaker=None), "auto", 2)[0] == "video"
    assert resolve_group(table.assign(speaker=None), "auto", 4)[0] == "corpus"  # 2 segments per video
    with pytest.raises(ValueError, match="needs a speaker"):
        resolve_group(table.assign(speaker=None), "speaker", 4)


def test_registry_and_plugin_names():
    assert set(TASKS) == {"energy", "face", "au", "cluster", "acoustic"}
    assert [t.name for t in parse_tasks("energy,face,au")] == ["energy", "face", "au"]
    with pytest.raises(ValueError, match="choose from \\['acoustic', 'au', 'cluster', 'energy', 'face'\\]"):
        get_task("arousal")
    with pytest.raises(ValueError, match="cannot load"):
        get_task("no_such_module:Task")
    with pytest.raises(ValueError, match="twice"):
        parse_tasks("energy,energy")


def test_chunked_video_speed_equals_whole_video():
    """Chunking the alignment (for hour-long videos) must not change a single value."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, size=(478, 3)).astype(np.float32)
    landmarks = base + rng.normal(0, 0.002, size=(50, 478, 3)).astype(np.float32)
    landmarks[7] = np.nan  # a frame without a face
    present = np.isfinite(landmarks[:, 0, 0])
    times = np.arange(50) / 25.0
    media = SimpleNamespace(face={"landmarks": landmarks, "times": times, "present": present},
                            frame_size=(320, 240))
    region = geometry.REGIONS["all"]
    chunked = video_landmark_speed(media, region, 0.2, chunk=8)
    points = geometry.to_isotropic(landmarks, 320, 240)
    reference = np.nanmedian(points[present], axis=0)
    whole = landmark_speed(times, geometry.align_to_reference(points, reference), region, 0.2)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-5)
    np.testing.assert_array_equal(chunked[1], whole[1])
    assert not chunked[1][7] and not chunked[1][8]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_registered_task_keeps_the_contract(name):
    """Registry name = task name; a dataclass config with defaults that survives the label config's round trip
    (train.py rebuilds it from label_config.json); classes for the statistics; a head with one logit each."""
    task = get_task(name)
    assert task.name == name and isinstance(task, TASKS[name])
    cfg = task.Config()
    assert task.Config(**dataclasses.asdict(cfg)) == cfg
    assert task.label_column == f"{name}_label" and task.mask_column == f"{name}_mask"
    n = task.num_classes(cfg)
    if task.frame_level:  # regression per frame: the head reads the encoder's frames, targets are frames
        lengths = torch.tensor([5, 3, 4])
        outputs = task.build_head(16, cfg)(EncoderOutput(torch.randn(3, 5, 16), lengths, torch.zeros(3, 16)))
        assert outputs.shape == (3, 5, n + 1)
        target = torch.cat([torch.randn(3, 12, n), torch.ones(3, 12, 1)], dim=-1)
        loss = task.loss(outputs, target, torch.tensor([True, False, True]))
        counts = task.metric_counts(outputs, target, torch.tensor([True, False, True]), n)
        assert torch.isfinite(loss) and counts.shape == task.metric_shape(n)
        assert task.summarize_metric(counts)["n"] == (5 + 4) * n
        return
    classes = list(task.classes) or list(cfg.class_names)  # au and cluster take theirs from the config
    assert n >= 2 and len(classes) == n
    logits = task.build_head(16, cfg)(torch.zeros(3, 16))
    assert logits.shape == (3, n)
    loss = task.loss(logits, torch.tensor([0, 1, 0]), torch.tensor([True, False, True]))
    assert torch.isfinite(loss)


def test_auto_groups_fall_back_per_segment_speaker_then_folder_then_corpus():
    """A pool mixing a corpus with speaker ids and pre-cut clips of unknown speakers in two folders."""
    rows = [{"media_id": f"spk{k}", "speaker": "A", "source": "libri"} for k in range(4)]  # one speaker, 4 clips
    rows += [{"media_id": f"lone{k}", "speaker": f"B{k}", "source": "libri"} for k in range(4)]  # 1 clip each
    rows += [{"media_id": f"lrw{k}", "speaker": "", "source": "lrw"} for k in range(5)]  # unknown speakers
    rows += [{"media_id": "odd", "speaker": None, "source": "misc"}]  # alone in its folder
    table = pd.DataFrame(rows)
    name, keys = resolve_group(table, "auto", 4)
    assert set(keys[:4]) == {"speaker:A"}
    assert set(keys[4:8]) == {"folder:libri"} and set(keys[8:13]) == {"folder:lrw"}
    assert keys.iloc[13] == "corpus"
    assert name == "auto (folder 64%, speaker 29%, corpus 7%)"
    # Without a source column the small groups go straight to the corpus, as before.
    assert set(resolve_group(table.drop(columns="source"), "auto", 4)[1][4:]) == {"corpus"}


def test_a_task_that_breaks_the_contract_is_refused_when_registered_or_loaded():
    """A half-written task fails at registration (or when loaded as module:Class) naming what is missing,
    not in the middle of a training run."""
    @dataclass
    class Cfg:
        threshold: float = 0.5

    class LabelOnly(PretextTask):  # derivation only: no head, loss or metric
        name = "label_only"
        Config = Cfg
        classes = ("low", "high")
        label_meaning = "arousal"

        def segment_values(self, media, segments, cfg, context=None):
            return [{} for _ in segments]

        def assign_labels(self, table, cfg):
            return table, {}

    with pytest.raises(ValueError, match="not implemented.*build_head.*loss.*metric_counts.*num_classes"):
        register_task(LabelOnly)
    assert "label_only" not in TASKS

    class BadMeaning(ClassificationTask):
        name = "bad meaning"
        Config = Cfg
        classes = ("a", "b", "c")
        label_meaning = "valence"
        replaced_whole = ("rules",)

        def segment_values(self, media, segments, cfg, context=None):
            return [{} for _ in segments]

        def assign_labels(self, table, cfg):
            return table, {}

    with pytest.raises(ValueError) as err:
        check_task_class(BadMeaning)
    for part in ("must be an identifier", "label_meaning 'valence'", "replaced_whole names ['rules']"):
        assert part in str(err.value)
    with pytest.raises(ValueError, match="already registered"):
        register_task(type("Energy2", (TASKS["energy"],), {}))
    with pytest.raises(ValueError, match="not a subclass"):
        get_task("collections:OrderedDict")


def test_task_configs_are_validated_on_construction():
    with pytest.raises(ValueError, match="face.region 'nose_tip'"):
        FaceConfig(region="nose_tip")
    with pytest.raises(ValueError, match="group 'speakers'"):
        EnergyConfig(group="speakers")
