"""The acoustic-cluster pretext task on real extraction outputs of synthetic audio of clearly different kinds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from avpretext import synthetic
from data_prep.label.config import build_label_config
from data_prep.label.stage import label_corpus
from data_prep.segments import load_segments
from avpretext.common.clustering import kmeans, nearest_centres, standardise_within_groups
from pretext.recluster import recluster
from pretext.tasks import get_task
from pretext.tasks.cluster import NORM_CLIP, ClusterConfig
from pretext.tasks.cluster_descriptors import descriptor_columns
from pretext.train import TrainConfig, train
from tests.data_prep.helpers import run_extract

RATE = 16000
KINDS = ("low voice", "high voice", "noise", "tone")
STRETCH_S, PAUSE_S, REPEATS = 4.0, 1.5, 3  # pauses over 1 s are not bridged: one segment per stretch


def _stretch(kind: str, seed: int) -> np.ndarray:
    """4 s of one kind of sound at about -40 dBFS (room for +20 dB without clipping)."""
    n = int(STRETCH_S * RATE)
    if kind == "low voice":
        return synthetic.voiced_speech(STRETCH_S, -40.0, seed=seed, f0=100.0, tilt=1.5, pauses=False)
    if kind == "high voice":
        return synthetic.voiced_speech(STRETCH_S, -38.0, seed=seed, f0=280.0, tilt=0.6, pauses=False)
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return (rng.standard_normal(n) * 10 ** (-40 / 20)).astype(np.float32)
    t = np.arange(n) / RATE
    tone = np.sin(2 * np.pi * (1200 + 100 * rng.uniform()) * t) * np.sqrt(2) * 10 ** (-42 / 20)
    return (tone + rng.standard_normal(n) * 1e-4).astype(np.float32)


def _recording(seed: int) -> tuple[np.ndarray, list[str]]:
    """Every kind REPEATS times in a seeded order, separated by pauses; returns (audio, kind of each stretch)."""
    order = [kind for kind in KINDS for _ in range(REPEATS)]
    order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    # -90 dBFS: below the speech floor (-55 dB) even at +20 dB, so pauses stay pauses in the loud copy.
    pause = np.random.default_rng(seed + 100).standard_normal(int(PAUSE_S * RATE)).astype(np.float32) * 10 ** -4.5
    parts = [pause]
    for i, kind in enumerate(order):
        parts += [_stretch(kind, seed * 100 + i), pause]
    return np.concatenate(parts), order


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, face_model) -> dict:
    """Three recordings through ``data_prep extract``: two different ones, and the first again at +20 dB."""
    root = tmp_path_factory.mktemp("cluster_audio")
    audio_a, kinds_a = _recording(1)
    audio_b, kinds_b = _recording(2)
    sf.write(root / "rec_a.wav", audio_a, RATE, subtype="FLOAT")
    sf.write(root / "rec_b.wav", audio_b, RATE, subtype="FLOAT")
    sf.write(root / "rec_a_loud.wav", audio_a * 10.0, RATE, subtype="FLOAT")  # +20 dB, same sound
    out = tmp_path_factory.mktemp("cluster_extract")
    summary = run_extract(root, out, face_model)
    assert not summary.failed
    return {"out": out, "kinds": {"rec_a": kinds_a, "rec_b": kinds_b, "rec_a_loud": kinds_a}}


def _label(out: Path, dest: Path, **cluster) -> pd.DataFrame:
    config = build_label_config({"tasks": ["energy", "cluster"], "cluster": {"k": 4, **cluster}})
    return label_corpus(out, config, dest=dest, progress=False)


def _stems(table: pd.DataFrame) -> pd.Series:
    """The recording's file stem of each segment (media ids are ``<name>.wav-<hash>``)."""
    return table["media_id"].str.split(".wav").str[0]


def _kind_of_segments(table: pd.DataFrame, kinds: dict) -> list[str]:
    """The kind of each segment, from its recording's stretch order (one segment per stretch)."""
    result = []
    for stem, group in table.groupby(_stems(table), sort=False):
        assert len(group) == len(kinds[stem]), f"{stem}: one segment per stretch expected"
        result += list(kinds[stem])
    return result


def test_clusters_separate_the_kinds_and_are_deterministic(corpus, tmp_path):
    result = _label(corpus["out"], tmp_path / "one")
    table = result.table
    assert len(table) == 3 * len(KINDS) * REPEATS and table["cluster_mask"].all()
    assert table[descriptor_columns(32)].dtypes.eq(np.float32).all()
    kinds = pd.Series(_kind_of_segments(table, corpus["kinds"]), index=table.index)
    # Purity: each cluster is (almost) one kind, and each kind has its own cluster.
    purity = kinds.groupby(table["cluster_label"]).agg(lambda k: k.value_counts().iloc[0]).sum() / len(table)
    assert purity >= 0.9, pd.crosstab(kinds, table["cluster_label"])
    assert table["cluster_label"].nunique() == 4

    entry = result.stats["tasks"]["cluster"]
    assert entry["k"] == 4 and sorted(entry["class_counts"]) == ["c0", "c1", "c2", "c3"]
    assert sum(entry["cluster_sizes"]) == len(table) and entry["largest_share"] == max(entry["cluster_sizes"]) / 36
    assert entry["inertia"] > 0 and entry["group"] == "video"
    assert not [w for w in result.stats["warnings"] if w.startswith("cluster")]

    again = _label(corpus["out"], tmp_path / "two").table
    np.testing.assert_array_equal(again["cluster_label"], table["cluster_label"])
    pd.testing.assert_frame_equal(load_segments(tmp_path / "two"), load_segments(tmp_path / "one"))


def test_a_pure_gain_difference_lands_in_the_same_clusters(corpus, tmp_path):
    table = _label(corpus["out"], tmp_path / "video").table
    stems = _stems(table)
    quiet, loud = table[stems == "rec_a"], table[stems == "rec_a_loud"]
    np.testing.assert_array_equal(quiet["cluster_label"], loud["cluster_label"])
    # The gain really is in the descriptors: 20 dB in every energy and mel-band level.
    assert (loud["energy_value"].to_numpy() - quiet["energy_value"].to_numpy()) == pytest.approx(20, abs=0.5)
    mel_means = descriptor_columns(32)[:32]
    np.testing.assert_allclose(loud[mel_means].to_numpy() - quiet[mel_means].to_numpy(), 20, atol=1.0)
    # The per-recording normalisation is what makes them the same segments again: after it the two
    # recordings' descriptors agree (the kinds here differ enough that even corpus-wide clusters would).
    columns = descriptor_columns(32)
    both = pd.concat([quiet, loud])
    standardised = standardise_within_groups(both[columns].to_numpy(), both["media_id"].to_numpy(), NORM_CLIP)
    difference = np.abs(standardised[:len(quiet)] - standardised[len(quiet):]).max(0)
    # Except the frame-to-frame spread of the top quarter of the mel bands: there the quiet copy's voice sits
    # at the 16-bit floor of the extracted FLAC, which a gain does not move.
    top_band_spread = [32 + band for band in range(24, 32)]
    assert np.delete(difference, top_band_spread).max() < 0.25, difference


def test_too_few_segments_and_one_dominant_cluster_are_warned(corpus, tmp_path):
    table = _label(corpus["out"], tmp_path / "t").table
    task = get_task("cluster")
    # One sound throughout but two odd segments, clustered in two: c0 takes most segments -> a warning.
    one_kind = table.copy()
    columns = descriptor_columns(32)
    one_kind[columns] = np.tile(one_kind[columns].to_numpy()[:1], (len(table), 1))
    one_kind.loc[one_kind.index[:2], columns[0]] += 50
    _, facts = task.assign_labels(one_kind, ClusterConfig(k=2, group="corpus"))
    assert facts["largest_share"] > 0.9 and "largest cluster" in facts["warnings"][0]
    _, facts = task.assign_labels(table.head(3), ClusterConfig(k=4, group="corpus", min_group_size=2))
    assert facts["warnings"] == ["only 3 segments to cluster, fewer than k = 4"]


def test_config_is_validated_and_gives_the_classes():
    assert ClusterConfig(k=3).class_names == ["c0", "c1", "c2"]
    assert get_task("cluster").num_classes(ClusterConfig(k=5)) == 5
    for bad in ({"k": 1}, {"n_mels": 2}, {"group": "room"}, {"restarts": 0}, {"pca_dim": -1},
                {"min_speech_fraction": 2.0}, {"min_group_size": 1}):
        with pytest.raises(ValueError, match="cluster."):
            ClusterConfig(**bad)


def test_kmeans_is_seeded_and_numbers_clusters_by_size():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (10, 2)), rng.normal(-5, 0.1, (20, 2))])
    labels, centres, inertia = kmeans(x, 3, seed=1, restarts=3)
    assert np.bincount(labels).tolist() == [30, 20, 10]
    np.testing.assert_allclose(centres[:, 0], [0, -5, 5], atol=0.1)
    again = kmeans(x, 3, seed=1, restarts=3)
    np.testing.assert_array_equal(again[0], labels)
    assert again[2] == inertia
    # New points go to the centre of their blob, in the same size-ordered numbering.
    np.testing.assert_array_equal(nearest_centres(np.array([[5.2, 4.9], [0.1, 0.0], [-4.8, -5.1]]), centres),
                                  [2, 0, 1])


@pytest.mark.slow
def test_pretraining_with_energy_and_cluster(corpus, tmp_path):
    _label(corpus["out"], corpus["out"])  # train reads the table and label config beside the extraction
    config = TrainConfig(data=str(corpus["out"]), tasks="energy,cluster", out=str(tmp_path / "run"),
                         encoder_options={"channels": [8, 8, 16], "dim": 16}, max_steps=3, batch_size=4,
                         warmup_steps=1, max_seconds=2.0, num_workers=0, eval_every=3, checkpoint_every=3,
                         log_every=1, report_to="none")
    encoder = train(config)
    assert (encoder / "config.json").exists()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert any("cluster" in line for line in lines)

    # The next DeepEmoCluster round: re-cluster on the trained encoder's embeddings, rewriting the table.
    before = load_segments(corpus["out"])
    table, facts = recluster(encoder, corpus["out"], write=True)
    assert facts["k"] == 4 and sum(facts["cluster_sizes"]) == int(before["cluster_mask"].sum())
    np.testing.assert_array_equal(table["cluster_mask"], before["cluster_mask"])
    assert set(table["cluster_label"][table["cluster_mask"]]) <= {0, 1, 2, 3}
    pd.testing.assert_frame_equal(load_segments(corpus["out"]), table)
    pd.testing.assert_frame_equal(table.drop(columns=["cluster_label"]), before.drop(columns=["cluster_label"]))
