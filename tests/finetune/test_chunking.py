"""Chunk-level modelling (Lin and Busso): the dynamic mode maps every utterance to exactly C chunks of S seconds
whose overlap is (C*S - L)/(C - 1), training reads whole utterances, chunk embeddings are aggregated (mean,
attention, gated, a GRU over the chunk sequence), and the settings travel with the model folder; the sliding
mode (a fixed overlap) is how a model folder whose chunking records no mode is read."""
from __future__ import annotations

import json

import pytest
import torch

from avpretext.common.audio import read_audio
from encoders import build_encoder
from finetune.chunking import ChunkPooling, dynamic_chunks, dynamic_starts, sliding_chunks
from finetune.config import FinetuneConfig
from finetune.data import probe_durations, resolve_targets, segment_table
from finetune.loop import _loaders
from finetune.model import LABELS_FILE, SERModel, load_model
from finetune.predict import load_waveform
from finetune.recipes import load_manifest
from finetune.train import run
from tests.conftest import RAVDESS, _require

TINY = {"channels": [8, 16, 32], "dim": 32, "n_mels": 40}
RATE = 16000


@pytest.fixture(scope="module")
def real_utterances() -> list[torch.Tensor]:
    """Real speech of four lengths: RAVDESS's shortest (2.9 s) and longest (5.3 s) clips, the first 0.6 s of
    one (shorter than a chunk) and three clips end to end (12 s: longer than 11 chunks of 1 s)."""
    root = _require(RAVDESS, "the RAVDESS speech corpus")
    names = ["Actor_13/03-01-02-01-02-02-13.flac", "Actor_19/03-01-07-02-01-02-19.flac",
             "Actor_01/03-01-01-01-01-01-01.flac"]
    clips = [read_audio(root / name) for name in names]
    return [clips[0], clips[1], clips[2][:int(0.6 * RATE)], torch.cat(clips)]


def _padded(wavs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        batch[i, :len(w)] = w
    return batch, lengths


def test_every_real_utterance_gives_c_chunks_whose_overlap_follows_the_papers_formula(real_utterances):
    chunk, count = RATE, 11  # S = 1 s, C = 11
    wavs, lengths = _padded(real_utterances)
    chunks, sizes, owner = dynamic_chunks(wavs, lengths, chunk, count)
    assert chunks.shape == (len(real_utterances) * count, chunk)
    assert torch.bincount(owner).tolist() == [count] * len(real_utterances)  # whatever the length
    starts = dynamic_starts(lengths, chunk, count)
    for i, wav in enumerate(real_utterances):
        length = len(wav)
        mine = chunks[owner == i]
        if length < chunk:  # every chunk is the whole utterance, valid for its length, zeros after it
            assert (starts[i] == 0).all() and (sizes[owner == i] == length).all()
            assert torch.equal(mine[:, :length], wav.expand(count, -1)) and not mine[:, length:].any()
            continue
        overlap = (count * chunk - length) / (count - 1)  # the papers' formula, in samples
        hops = starts[i].diff().double()
        assert starts[i, 0] == 0 and starts[i, -1] + chunk == length  # first at the start, last at the end
        assert torch.allclose(hops, torch.full_like(hops, chunk - overlap), atol=1.0)
        assert (sizes[owner == i] == chunk).all()
        for k in range(count):
            assert torch.equal(mine[k], wav[starts[i, k]:starts[i, k] + chunk])
    # 2.9 s and 5.3 s overlap by 0.81 s and 0.57 s; the 12 s clip's overlap is negative (even gaps between chunks).
    assert (count * chunk - len(real_utterances[0])) / (count - 1) / RATE == pytest.approx(0.81, abs=0.01)
    assert (count * chunk - len(real_utterances[3])) / (count - 1) < 0


def test_the_sliding_mode_keeps_a_fixed_hop_so_its_count_grows_with_the_length():
    wavs = torch.arange(3 * 10, dtype=torch.float32).reshape(3, 10)
    lengths = torch.tensor([10, 7, 3])
    chunks, sizes, owner = sliding_chunks(wavs, lengths, chunk=4, hop=2)
    # 10 samples: starts 0, 2, 4 and the last aligned to the end (6); 7: 0, 2 and 3; 3: one short chunk.
    assert owner.tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    assert sizes.tolist() == [4, 4, 4, 4, 4, 4, 4, 3]
    assert chunks[3].tolist() == wavs[0, 6:10].tolist() and chunks[6].tolist() == wavs[1, 3:7].tolist()


def test_poolings_aggregate_within_each_utterance():
    torch.manual_seed(0)
    embeddings = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    owner = torch.tensor([0, 0, 1])
    mean = ChunkPooling(2, "mean")(embeddings, owner, 2)
    assert torch.allclose(mean, torch.tensor([[2.0, 1.0], [5.0, 5.0]]))
    attention = ChunkPooling(2, "attention")
    weights = torch.softmax(attention.score(embeddings[:2]).squeeze(-1), 0)
    assert torch.allclose(attention(embeddings, owner, 2)[0], weights @ embeddings[:2], atol=1e-6)
    gated = ChunkPooling(2, "gated")
    gates = gated.gate(embeddings)
    assert torch.allclose(gated(embeddings, owner, 2)[1], gates[2] * embeddings[2], atol=1e-6)
    # The recurrent aggregation reads the chunks in order: reversing one utterance's chunks changes only its
    # embedding.
    gru = ChunkPooling(4, "gru")
    sequence = torch.randn(2 * 5, 4)
    owner = torch.arange(2).repeat_interleave(5)
    pooled = gru(sequence, owner, 2)
    flipped = torch.cat([sequence[:5].flip(0), sequence[5:]])
    again = gru(flipped, owner, 2)
    assert pooled.shape == (2, 4) and torch.allclose(pooled[1], again[1]) and not torch.allclose(pooled[0], again[0])


def test_a_dynamically_chunked_model_equals_the_mean_of_its_chunks_encoded_alone(real_utterances):
    torch.manual_seed(0)
    settings = {"mode": "dynamic", "seconds": 1.0, "count": 4, "pooling": "mean"}
    model = SERModel(build_encoder("cnn", **TINY), 3, chunking=settings).eval()
    wav = real_utterances[0][None]  # 2.9 s, 4 chunks: starts every (L - S) / 3 samples
    length = wav.shape[1]
    starts = [round(k * (length - RATE) / 3) for k in range(4)]
    with torch.no_grad():
        pooled = model.embed({"wavs": wav, "lengths": torch.tensor([length])})
        alone = [model.encoder(wav[:, s:s + RATE], torch.tensor([RATE])).pooled for s in starts]
    assert torch.allclose(pooled, torch.cat(alone).mean(0, keepdim=True), atol=1e-5)


def _base(manifest, **overrides):
    return dict(manifest=str(manifest), encoder="cnn", encoder_options=TINY, epochs=2, num_folds=3, fold="0",
                lr=3e-3, max_seconds=1.0, batch_size=8, num_workers=0, progress=False) | overrides


def test_dynamic_chunking_trains_on_whole_utterances_and_sliding_on_crops(manifest):
    rows = load_manifest(str(manifest))
    targets = resolve_targets(rows)
    table = segment_table(probe_durations(rows.head(8), False)[0], targets)
    tables = {"train": table, "dev": table, "test": table}
    whole = torch.tensor([int(round(d * RATE)) for d in table["end"]])
    for mode, expected in (("dynamic", whole), ("sliding", torch.full_like(whole, RATE))):
        config = FinetuneConfig(**_base(manifest, chunk_seconds=0.5, chunk_mode=mode))
        train_loader, sampler, _ = _loaders(config, tables, targets)
        sampler.set_epoch(0)
        batch = next(iter(train_loader))
        assert sorted(batch["lengths"].tolist()) == sorted(expected.tolist()), mode  # the clips last 2.5 s


@pytest.mark.slow
def test_a_gru_chunked_run_saves_its_chunking_and_predicts_with_it(manifest, tmp_path):
    base = _base(manifest, chunk_seconds=0.5, chunk_count=6, chunk_pooling="gru")
    summary = run(FinetuneConfig(out=str(tmp_path / "run"), **base))
    assert summary["pooled"]["count"] > 0
    folder = tmp_path / "run" / "fold0" / "model"
    model, _ = load_model(folder)
    assert model.chunking == {"mode": "dynamic", "seconds": 0.5, "count": 6, "pooling": "gru"}
    wav = load_waveform(next((manifest.parent / "speech").rglob("*.flac")), 3.0).unsqueeze(0)
    batch = {"wavs": wav, "lengths": torch.tensor([wav.shape[1]])}
    with torch.no_grad():
        out = model(batch)
        chunks, sizes, owner = dynamic_chunks(wav, batch["lengths"], RATE // 2, 6)
        expected = model.head(model.chunk_pool(model.encoder(chunks, sizes).pooled, owner, 1))
        whole = model.head(model.encoder(wav, batch["lengths"]).pooled)
    assert torch.allclose(out, expected, atol=1e-6) and not torch.allclose(out, whole)


@pytest.mark.slow
def test_a_model_folder_without_a_chunk_mode_loads_and_chunks_by_sliding(manifest, tmp_path):
    base = _base(manifest, epochs=1, chunk_seconds=0.5, chunk_mode="sliding", chunk_pooling="attention")
    run(FinetuneConfig(out=str(tmp_path / "run"), **base))
    folder = tmp_path / "run" / "fold0" / "model"
    info = json.loads((folder / LABELS_FILE).read_text())
    info["chunking"] = {"seconds": 0.5, "overlap": 0.5, "pooling": "attention"}  # no mode recorded
    (folder / LABELS_FILE).write_text(json.dumps(info))
    model, _ = load_model(folder)
    wav = load_waveform(next((manifest.parent / "speech").rglob("*.flac")), 3.0).unsqueeze(0)
    lengths = torch.tensor([wav.shape[1]])
    with torch.no_grad():
        chunks, sizes, owner = sliding_chunks(wav, lengths, RATE // 2, RATE // 4)
        expected = model.head(model.chunk_pool(model.encoder(chunks, sizes).pooled, owner, 1))
        assert torch.allclose(model({"wavs": wav, "lengths": lengths}), expected, atol=1e-6)


@pytest.mark.parametrize("overrides,message", [
    ({"chunk_seconds": -1.0}, "--chunk-seconds -1.0: must be >= 0"),
    ({"chunk_seconds": 1.0, "chunk_mode": "fixed"}, "--chunk-mode 'fixed': choose from dynamic, sliding"),
    ({"chunk_seconds": 1.0, "chunk_count": 1}, "--chunk-count 1: must be >= 2"),
    ({"chunk_seconds": 1.0, "chunk_overlap": 1.0}, r"--chunk-overlap 1.0: must be in \[0, 1\)"),
    ({"chunk_seconds": 1.0, "chunk_pooling": "max"}, "--chunk-pooling 'max'"),
    ({"chunk_seconds": 1.0, "chunk_mode": "sliding", "chunk_pooling": "gru"}, "--chunk-pooling gru needs"),
    ({"chunk_seconds": 1.0, "mode": "probe"}, "--chunk-seconds needs --mode finetune"),
])
def test_chunking_mistakes_are_refused_before_training(manifest, tmp_path, overrides, message):
    base = dict(manifest=str(manifest), encoder_options=TINY, num_folds=3, num_workers=0, progress=False)
    with pytest.raises(ValueError, match=message):
        run(FinetuneConfig(out=str(tmp_path / "out"), **(base | overrides)))
    assert not (tmp_path / "out").exists()
