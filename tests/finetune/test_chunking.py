"""Dynamic chunking (Lin and Busso): variable numbers of fixed-length overlapping chunks, pooled by mean or
attention, saved with the model and applied the same way at prediction."""
from __future__ import annotations

import pytest
import torch

from encoders import build_encoder
from finetune.chunking import ChunkPooling, chunk_batch
from finetune.config import FinetuneConfig
from finetune.model import SERModel, load_model
from finetune.predict import load_waveform
from finetune.train import run

TINY = {"channels": [8, 16, 32], "dim": 32, "n_mels": 40}


def test_chunks_cover_each_utterance_and_their_number_follows_its_length():
    wavs = torch.arange(3 * 10, dtype=torch.float32).reshape(3, 10)
    lengths = torch.tensor([10, 7, 3])
    chunks, sizes, owner = chunk_batch(wavs, lengths, chunk=4, hop=2)
    # 10 samples: starts 0, 2, 4 and the last aligned to the end (6); 7: 0, 2 and 3; 3: one short chunk.
    assert owner.tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    assert sizes.tolist() == [4, 4, 4, 4, 4, 4, 4, 3]
    assert chunks[3].tolist() == wavs[0, 6:10].tolist() and chunks[6].tolist() == wavs[1, 3:7].tolist()
    assert chunks[7, :3].tolist() == wavs[2, :3].tolist()


def test_pooling_is_a_mean_or_a_softmax_within_each_utterance():
    embeddings = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    owner = torch.tensor([0, 0, 1])
    mean = ChunkPooling(2, "mean")(embeddings, owner, 2)
    assert torch.allclose(mean, torch.tensor([[2.0, 1.0], [5.0, 5.0]]))
    attention = ChunkPooling(2, "attention")
    pooled = attention(embeddings, owner, 2)
    scores = attention.score(embeddings).squeeze(-1)
    weights = torch.softmax(scores[:2], 0)
    assert torch.allclose(pooled[0], weights @ embeddings[:2], atol=1e-6)
    assert torch.allclose(pooled[1], embeddings[2])  # one chunk: weight 1


def test_a_chunked_model_equals_the_mean_of_its_chunks_encoded_alone():
    torch.manual_seed(0)
    model = SERModel(build_encoder("cnn", **TINY), 3, chunking={"seconds": 1.0, "overlap": 0.5, "pooling": "mean"})
    model.eval()
    wav = torch.randn(1, 40000)  # 2.5 s: chunks at 0, 0.5, 1.0 and 1.5 s (the last one aligned to the end)
    with torch.no_grad():
        pooled = model.embed({"wavs": wav, "lengths": torch.tensor([40000])})
        alone = [model.encoder(wav[:, s:s + 16000], torch.tensor([16000])).pooled for s in (0, 8000, 16000, 24000)]
    assert torch.allclose(pooled, torch.cat(alone).mean(0, keepdim=True), atol=1e-5)


def test_an_attention_chunked_run_saves_its_chunking_and_predicts_with_it(manifest, tmp_path):
    base = dict(manifest=str(manifest), encoder="cnn", encoder_options=TINY, epochs=2, num_folds=3, fold="0",
                lr=3e-3, max_seconds=2.0, batch_size=8, num_workers=0, progress=False, chunk_seconds=0.5,
                chunk_overlap=0.5, chunk_pooling="attention")
    summary = run(FinetuneConfig(out=str(tmp_path / "run"), **base))
    assert summary["pooled"]["count"] > 0
    model, _ = load_model(tmp_path / "run" / "fold0" / "model")
    assert model.chunking == {"seconds": 0.5, "overlap": 0.5, "pooling": "attention"}
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "run" / "fold0" / "model" / "head.safetensors"))
    assert any(k.startswith("chunk_pool.") for k in saved)
    assert torch.equal(saved["chunk_pool.score.0.weight"], model.chunk_pool.score[0].weight)
    path = manifest.parent / "speech"
    wav = load_waveform(next(path.rglob("*.flac")), 3.0).unsqueeze(0)
    with torch.no_grad():
        out = model({"wavs": wav, "lengths": torch.tensor([wav.shape[1]])})
        expected = model.head(model.embed({"wavs": wav, "lengths": torch.tensor([wav.shape[1]])}))
        whole = model.head(model.encoder(wav, torch.tensor([wav.shape[1]])).pooled)
    assert torch.allclose(out, expected) and not torch.allclose(out, whole)  # prediction chunks too


@pytest.mark.parametrize("overrides,message", [
    ({"chunk_seconds": -1.0}, "--chunk-seconds -1.0: must be >= 0"),
    ({"chunk_seconds": 1.0, "chunk_overlap": 1.0}, r"--chunk-overlap 1.0: must be in \[0, 1\)"),
    ({"chunk_seconds": 1.0, "chunk_pooling": "max"}, "--chunk-pooling 'max'"),
    ({"chunk_seconds": 1.0, "mode": "probe"}, "--chunk-seconds needs --mode finetune"),
])
def test_chunking_mistakes_are_refused_before_training(manifest, tmp_path, overrides, message):
    base = dict(manifest=str(manifest), encoder_options=TINY, num_folds=3, num_workers=0, progress=False)
    with pytest.raises(ValueError, match=message):
        run(FinetuneConfig(out=str(tmp_path / "out"), **(base | overrides)))
    assert not (tmp_path / "out").exists()
