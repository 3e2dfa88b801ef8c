"""DeepEmoCluster's loop inside pretraining (pretext.deep_cluster): rounds of k-means on the encoder's own
embeddings, labels replaced, the head re-initialised, every round saved and re-applied on resume."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data_prep.segments import load_segments
from pretext.deep_cluster import check_recluster, cluster_purity, DeepClusterLoop
from pretext.train import TrainConfig, train
from tests.pretext.test_cluster_task import _kind_of_segments, _label, corpus  # noqa: F401 (fixture)

TINY = {"channels": [8, 8, 16], "dim": 16}


def test_purity_is_the_share_in_each_clusters_majority_class():
    labels = np.array([0, 0, 0, 1, 1, 2])
    classes = pd.Series(["a", "a", "b", "b", "b", ""])  # the unknown one is left out
    assert cluster_purity(labels, classes) == pytest.approx(4 / 5)
    assert cluster_purity(labels, pd.Series(["a"] * 6)) is None  # one class: nothing to be pure about


def test_recluster_options_are_checked():
    check_recluster(0, ["energy"])
    with pytest.raises(ValueError, match="--recluster-every -1: must be >= 0"):
        check_recluster(-1, ["cluster"])
    with pytest.raises(ValueError, match="add cluster to --tasks"):
        check_recluster(2, ["energy", "face"])


@pytest.fixture(scope="module")
def labelled(corpus, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """The cluster corpus labelled with energy and cluster (k = 4), each segment's sound kind as its
    ``emotion`` (what the rounds' purity is measured against)."""
    dest = tmp_path_factory.mktemp("deep_cluster_labels")
    table = _label(corpus["out"], dest)
    table = load_segments(dest)
    table["emotion"] = _kind_of_segments(table, corpus["kinds"])
    table.to_parquet(dest / "segments.parquet", index=False)
    return dest


def _config(data, out, **overrides) -> TrainConfig:
    return TrainConfig(**(dict(data=str(data), tasks="energy,cluster", out=str(out), encoder_options=TINY,
                               max_steps=9, batch_size=8, warmup_steps=1, max_seconds=2.0, num_workers=0,
                               eval_every=100, checkpoint_every=3, log_every=3, report_to="none",
                               recluster_every=1) | overrides))


@pytest.mark.slow
def test_pretraining_re_clusters_on_its_own_embeddings_every_epoch_and_resumes_with_them(labelled, tmp_path):
    table = load_segments(labelled)
    run = tmp_path / "run"
    train(_config(labelled, run))
    rounds = sorted((run / "clusters").glob("round_*.json"))
    facts = [json.loads(path.read_text()) for path in rounds]
    assert len(facts) >= 2 and [f["epoch"] for f in facts] == [f["round"] for f in facts] == \
        list(range(1, len(facts) + 1))
    for f in facts:
        assignments = pd.read_parquet(run / "clusters" / f"round_{f['round']:03d}.parquet")
        split = table.set_index("segment_id").loc[assignments["segment_id"]]
        # The same segments stay masked; the labelled ones get one of the k = 4 clusters.
        np.testing.assert_array_equal(assignments["cluster_mask"], split["cluster_mask"])
        assert set(assignments["cluster_label"][assignments["cluster_mask"]]) <= {0, 1, 2, 3}
        assert sum(f["cluster_sizes"]) == int(assignments["cluster_mask"].sum())
        assert 0 < f["purity_chance"] <= f["purity"] <= 1  # measured against the sound kinds
    last = pd.read_parquet(run / "clusters" / f"round_{facts[-1]['round']:03d}.parquet")
    first = pd.read_parquet(run / "clusters" / "round_001.parquet")
    labelled_rows = table.set_index("segment_id").loc[first["segment_id"], "cluster_mask"].to_numpy()
    original = table.set_index("segment_id").loc[first["segment_id"], "cluster_label"].to_numpy()
    # Round 1 clusters the encoder's embeddings, not the label stage's descriptors: some segments move.
    assert (first["cluster_label"].to_numpy()[labelled_rows] != original[labelled_rows]).any() or \
        (last["cluster_label"].to_numpy() != first["cluster_label"].to_numpy()).any()

    # Round files belong to their run's segments.
    from avpretext.common.batches import SegmentDataset

    other = DeepClusterLoop(1, None, [SegmentDataset(table.iloc[:10], ["cluster"], 2.0, False)], run, seed=0)
    with pytest.raises(ValueError, match="its segments are not this run's"):
        other.resume(facts[-1]["epoch"])


@pytest.mark.slow
def test_a_round_replaces_the_labels_and_re_initialises_the_head_and_its_optimizer_state(labelled, tmp_path):
    """The loop's own steps, on the run's real datasets, a real encoder and a trained head."""
    from accelerate import Accelerator

    from avpretext.common.batches import SegmentDataset, split_by_media
    from encoders import build_encoder
    from pretext.tasks import get_task
    from pretext.tasks.cluster import ClusterConfig
    from pretext.train import PretextModel

    table = load_segments(labelled)
    train_table, val_table = split_by_media(table, 0.2, 0)
    datasets = [SegmentDataset(t, ["cluster"], 2.0, False) for t in (train_table, val_table)]
    before = [d.labels["cluster"].clone() for d in datasets]
    torch.manual_seed(0)
    encoder = build_encoder("cnn", **TINY)
    cfg = ClusterConfig(**json.loads((labelled / "label_config.json").read_text())["cluster"])
    head = get_task("cluster").build_head(encoder.output_dim, cfg, 16)
    model = PretextModel(encoder, {"cluster": head})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    wavs, lengths = torch.randn(4, 16000) * 0.1, torch.full((4,), 16000)
    model(wavs, lengths)["cluster"].sum().backward()
    optimizer.step()
    trained = [p.detach().clone() for p in head.parameters()]
    loop = DeepClusterLoop(2, cfg, datasets, tmp_path, seed=0)
    assert loop.after_epoch(Accelerator(cpu=True), model, optimizer, 1) is None  # not due: nothing changes
    facts = loop.after_epoch(Accelerator(cpu=True), model, optimizer, 2)
    assert facts["round"] == 1 and facts["epoch"] == 2 and (tmp_path / "clusters" / "round_001.parquet").exists()
    assert all(not torch.equal(a, b) for a, b in zip(trained, head.parameters()))  # fresh weights
    assert all(p not in optimizer.state for p in head.parameters())  # and no Adam moments for them
    assert all(p in optimizer.state for p in encoder.parameters() if p.grad is not None)
    saved = pd.read_parquet(tmp_path / "clusters" / "round_001.parquet")
    joined = torch.cat([d.labels["cluster"] for d in datasets])
    assert torch.equal(joined, torch.tensor(saved["cluster_label"].clip(lower=0).to_numpy()))
    assert any(not torch.equal(a, d.labels["cluster"]) for a, d in zip(before, datasets))
    # Re-applying the round (a resumed run) gives the same labels; a fresh loop with other labels gets them back.
    for d in datasets:
        d.labels["cluster"] = torch.zeros_like(d.labels["cluster"])
    DeepClusterLoop(2, cfg, datasets, tmp_path, seed=0).resume(epoch=2)
    assert torch.equal(torch.cat([d.labels["cluster"] for d in datasets]), joined)
    assert DeepClusterLoop(2, cfg, datasets, tmp_path, seed=0).resume(epoch=1) is None  # made after epoch 2
