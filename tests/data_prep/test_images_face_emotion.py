"""Still images as extraction input, and the learned face-emotion mapping (fitting, shipping, the AU task).

Every image here is a real file written by the test (the demo face of avpretext.synthetic, posed with its
expression warps, saved as JPEG/PNG/TIFF/BMP) and goes through the real face model; the photographs of
../shared/data/expression_faces are used when present.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED

EXPRESSION_FACES = SHARED / "data" / "expression_faces"


def _huge_png(path: Path, width: int, height: int) -> None:
    """A valid 1-bit grey PNG of ``width`` x ``height`` (all black; a few kB on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def image_corpus(tmp_path_factory) -> Path:
    import cv2
    from PIL import Image

    from avpretext import synthetic

    root = tmp_path_factory.mktemp("images")
    face = synthetic.face_image()
    Image.fromarray(face).save(root / "face.jpg", quality=92)
    Image.fromarray(face).convert("L").save(root / "grey.png")
    grey16 = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 200
    cv2.imwrite(str(root / "grey16.tif"), grey16)
    Image.fromarray(cv2.resize(face, (1600, 1600))).save(root / "large.jpg", quality=85)
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(root / "no_face.bmp")
    data = (root / "face.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "not_an_image.png").write_bytes(b"this is text, not a PNG")
    _huge_png(root / "huge.png", 11000, 11000)
    return root


@pytest.fixture(scope="module")
def image_extraction(image_corpus, tmp_path_factory, face_model):
    from data_prep.extract import ExtractOptions, extract_corpus

    out = tmp_path_factory.mktemp("images_out")
    summary = extract_corpus(image_corpus, out, ExtractOptions(face_model=str(face_model)), progress=False)
    return out, summary


def _meta(out: Path, stem: str) -> dict:
    from data_prep.signals import list_done_items, load_media

    ids = [i for i in list_done_items(out) if i.startswith(stem)]
    assert ids, f"{stem} was not extracted"
    return load_media(out, ids[0]).meta


def test_images_extract_as_one_frame_items_without_audio(image_extraction):
    from data_prep.signals import list_done_items, load_media

    out, summary = image_extraction
    assert summary.done == 5, summary.report()
    for stem in ("face.jpg", "grey.png", "grey16.tif", "large.jpg"):
        meta = _meta(out, stem)
        assert meta["still_image"] and not meta["has_audio"] and meta["frames"] == 1
        assert meta["face_frames"] == 1, (stem, meta["warnings"])
    assert max(_meta(out, "large.jpg")["frame_width"], _meta(out, "large.jpg")["frame_height"]) == 640
    assert any("greyscale" in w for w in _meta(out, "grey.png")["warnings"])
    assert any("more than 8 bits" in w for w in _meta(out, "grey16.tif")["warnings"])
    assert any("no face found" in w for w in _meta(out, "no_face.bmp")["warnings"])
    media = load_media(out, [i for i in list_done_items(out) if i.startswith("face.jpg")][0])
    assert media.audio_path is None and np.isfinite(media.face["aus"][0]).all()


def test_bad_images_fail_with_one_line_reason(image_extraction):
    _, summary = image_extraction
    reasons = {k.split("-")[0]: v for k, v in summary.failed.items()}
    assert set(reasons) == {"truncated.jpg", "not_an_image.png", "huge.png"}, reasons
    assert "truncated" in reasons["truncated.jpg"] and "truncated.jpg" in reasons["truncated.jpg"]
    assert "not a readable image" in reasons["not_an_image.png"]
    assert "megapixel limit" in reasons["huge.png"]
    assert all("\n" not in r and "Traceback" not in r for r in reasons.values())


def test_label_and_audit_handle_images(image_extraction, tmp_path):
    from data_prep.label.audit import audit_labels
    from data_prep.label.stage import label_corpus

    out, _ = image_extraction
    result = label_corpus(out, dest=tmp_path / "labels", progress=False)
    assert result.stats["segments"] == 0
    assert set(result.stats["media_without_segments"].values()) == {"no audio: still image"}
    refs = tmp_path / "refs.csv"
    pd.DataFrame({"path": [_meta(out, "face.jpg")["path"]], "emotion": ["happy"]}).to_csv(refs, index=False)
    with pytest.warns(UserWarning, match="too few to standardise"):  # one photograph is no corpus
        report = audit_labels(out, refs, tmp_path / "audit").report
    assert report["tasks"]["au"]["n_shared"] == 1
    assert report["tasks"]["energy"]["segments"] == 0  # no audio: the audio task has nothing to score


def test_shipped_mapping_loads_and_labels_the_demo_face(image_extraction):
    from data_prep.face_emotion import EMOTION_CLASSES, default_mapping_path, load_mapping
    from data_prep.signals import list_done_items, load_media

    assert default_mapping_path().is_file(), "the default mapping must ship inside the package"
    mapping = load_mapping()
    assert mapping.classes == list(EMOTION_CLASSES)
    assert mapping.summary["identities"] >= 50 and mapping.summary["cv_scores"]["accuracy"] > 0.5
    out, _ = image_extraction
    media = load_media(out, [i for i in list_done_items(out) if i.startswith("face.jpg")][0])
    proba = mapping.media_probabilities(media)  # one photograph: no corpus statistics, the fallback ones
    assert proba.shape == (1, 7) and np.isclose(proba.sum(), 1.0)


@pytest.fixture(scope="module")
def posed_manifest(tmp_path_factory) -> Path:
    """12 real images of the demo face posing neutral / happy / surprise; 'identities' are pose strengths."""
    from PIL import Image

    from avpretext import synthetic

    root = tmp_path_factory.mktemp("posed")
    face = synthetic.face_image()
    rows = []
    for k, strength in enumerate((0.8, 1.0, 1.2, 1.4)):
        for expression, emotion in (("neutral", "neutral"), ("happy", "happy"), ("surprise", "surprised")):
            name = f"id{k}_{expression}.png"
            Image.fromarray(synthetic.expression_frame(face, expression, strength)).save(root / name)
            rows.append({"path": name, "emotion": emotion, "identity": f"id{k}"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


@pytest.mark.slow
def test_fit_command_writes_a_json_mapping_and_the_au_task_uses_it(posed_manifest, tmp_path, face_model,
                                                                    monkeypatch, capsys):
    from data_prep.label.cli import main
    from data_prep.face_emotion import load_mapping
    from data_prep.label.config import build_label_config
    from data_prep.label.audit import audit_labels

    monkeypatch.setenv("AVPRETEXT_FACE_MODEL", str(face_model))
    out = tmp_path / "mine.json"
    code = main(["fit-face-emotion", str(posed_manifest), "--out", str(out), "--features", "blendshapes",
                 "--folds", "2", "--no-progress"])
    assert code == 0, capsys.readouterr()
    data = json.loads(out.read_text())  # plain JSON: no pickle anywhere
    assert data["classes"][0] == "neutral" and len(data["features"]) == 51
    mapping = load_mapping(out)
    assert mapping.summary["identities"] == 4 and mapping.summary["chosen"]["features"] == "blendshapes"
    extract_dir = tmp_path / "mine_extract"
    assert extract_dir.is_dir()  # the default extraction folder beside the mapping
    config = build_label_config({"tasks": ["au"], "au": {"mapping": "learned", "mapping_file": str(out),
                                                         "aggregation": "mean"}})
    refs = tmp_path / "refs.csv"
    pd.read_csv(posed_manifest).assign(path=lambda t: [str(posed_manifest.parent / p) for p in t.path]) \
        .to_csv(refs, index=False)
    report = audit_labels(extract_dir, refs, tmp_path / "audit", config=config).report
    au = report["tasks"]["au"]
    assert au["labelling"].startswith("learned (mine.json")
    assert au["n_shared"] == 12 and au["accuracy"] >= 0.75, au  # fitted on these faces: mostly right


@pytest.mark.slow
def test_shipped_mapping_through_the_label_stage(tmp_path, face_model):
    """`data_prep label` with au.mapping = learned (the shipped file) on real talking-face videos with speech:
    every segment with a face gets a class from the mapping's probabilities, and the statistics say which
    mapping labelled them."""
    from data_prep.extract import ExtractOptions, extract_corpus
    from data_prep.label.stage import format_statistics, label_corpus
    from data_prep.label.config import build_label_config

    from avpretext import synthetic

    corpus = tmp_path / "corpus"
    synthetic.write_talking_face(corpus / "a.mp4", 2.0, jaw_amplitude=8.0, seed=1)
    synthetic.write_talking_face(corpus / "b.mp4", 2.0, jaw_amplitude=4.0, seed=2)
    synthetic.write_media(corpus / "podcast.wav", audio=synthetic.AudioTrack(synthetic.voiced_speech(2.0, seed=3),
                                                                           codec="pcm_s16le"))
    extract_corpus(corpus, tmp_path / "out", ExtractOptions(face_model=str(face_model), max_fps=10),
                   progress=False)
    for aggregation in ("mean", "votes"):
        config = build_label_config({"tasks": ["energy", "au"], "segmentation": {"mode": "clip"},
                                     "au": {"mapping": "learned", "aggregation": aggregation}})
        result = label_corpus(tmp_path / "out", config, dest=tmp_path / aggregation, progress=False)
        table = result.table
        faces = table[table["au_mask"]]
        assert len(table) == 3 and len(faces) == 2  # the wav has no face: its segment is masked
        assert faces["au_label"].between(0, 6).all()
        probabilities = faces[[f"au_prob_{c}" for c in config.task_configs["au"].class_names]].to_numpy()
        assert np.allclose(probabilities.sum(1), 1.0)
        entry = result.stats["tasks"]["au"]
        assert entry["mapping"].startswith(f"learned (face_emotion_default.json") and aggregation in entry["mapping"]
        assert "mapping: learned" in format_statistics(result.stats)


def test_mapping_that_does_not_match_the_features_is_a_clear_error(tmp_path, capsys):
    from data_prep.label.cli import main
    from data_prep.face_emotion import MappingError, default_mapping_path, load_mapping
    from pretext.tasks.au import AUConfig

    data = json.loads(default_mapping_path().read_text())
    data["features"] = data["features"][:-1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(MappingError, match="feature list does not match"):
        load_mapping(bad)
    with pytest.raises(ValueError, match="bad.json"):
        AUConfig(mapping="learned", mapping_file=str(bad))
    config = tmp_path / "cfg.toml"
    config.write_text(f'[au]\nmapping = "learned"\nmapping_file = "{bad}"\n')
    assert main(["label", str(tmp_path), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.json" in err and "feature list does not match" in err and len(err.splitlines()) == 1
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(MappingError, match="cannot read it as JSON"):
        load_mapping(tmp_path / "garbage.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(MappingError, match="not a face-emotion mapping"):
        load_mapping(tmp_path / "other.json")


def test_mapping_reading_au_estimates_the_extraction_lacks_is_a_clear_error(image_extraction):
    """An extraction whose stored AU estimates lack one the mapping reads (an older extraction, another AU
    backend) is a one-line MappingError naming the AU, never a silently shifted feature column."""
    import dataclasses

    from data_prep.face_emotion import MappingError, load_mapping
    from data_prep.signals import list_done_items, load_media

    mapping = load_mapping()
    assert "aus" in mapping.feature_groups
    out, _ = image_extraction
    media = load_media(out, [i for i in list_done_items(out) if i.startswith("face.jpg")][0])
    names = list(media.meta["au_names"])
    fewer = dataclasses.replace(media, meta={**media.meta, "au_names": names[:-1]},
                                face={**media.face, "aus": np.asarray(media.face["aus"])[:, :-1]})
    with pytest.raises(MappingError, match=f"lack \\['{names[-1]}'\\]") as err:
        mapping.media_probabilities(fewer)
    assert "\n" not in str(err.value)


def test_expression_faces_photographs(tmp_path, face_model):
    """A few real photographs: faces found in IMAGE mode, and the shipped mapping reads a happy face as happy."""
    if not EXPRESSION_FACES.exists():
        pytest.skip(f"expression_faces not found at {EXPRESSION_FACES} (the shared data folder sits beside the "
                    "repository in CI; a fresh clone does not have it)")
    from data_prep.extract import ExtractOptions, extract_corpus
    from data_prep.face_emotion import EMOTION_CLASSES, load_mapping
    from data_prep.signals import list_done_items, load_media

    manifest = pd.read_csv(EXPRESSION_FACES / "manifest.csv")
    chosen = pd.concat([manifest[manifest.emotion == e].head(2) for e in ("happy", "surprised", "neutral")])
    chosen = chosen.assign(path=[str(EXPRESSION_FACES / p) for p in chosen.path])
    chosen.to_csv(tmp_path / "few.csv", index=False)
    summary = extract_corpus(tmp_path / "few.csv", tmp_path / "out", ExtractOptions(face_model=str(face_model)),
                             progress=False)
    assert summary.done == 6 and summary.face_frames == 6, summary.report()
    mapping = load_mapping()
    by_path = dict(zip(chosen.path, chosen.emotion))
    for item in list_done_items(tmp_path / "out"):
        media = load_media(tmp_path / "out", item)
        if by_path[media.meta["path"]] == "happy":
            assert EMOTION_CLASSES[int(mapping.media_probabilities(media).argmax())] == "happiness"


def test_measures_and_mirror_permutation_on_a_face_and_its_mirror_image(tmp_path, face_model):
    """The engineered measures and mirror_permutation on the real face model's output: a photograph and its
    left-right flip give the same measures (side means, absolute asymmetries), and the flip's geometry is the
    photograph's with mirror partners swapped and x negated (not merely swapped)."""
    from PIL import Image

    from avpretext import synthetic
    from data_prep.extract import ExtractOptions, extract_corpus
    from data_prep.face_emotion import FEATURE_GROUPS, MappingError, feature_names, frame_features, mirror_permutation
    from data_prep.signals import list_done_items, load_media

    face = synthetic.expression_frame(synthetic.face_image(), "happy", 1.2)
    Image.fromarray(face).save(tmp_path / "face.png")
    Image.fromarray(np.ascontiguousarray(face[:, ::-1])).save(tmp_path / "flipped.png")
    extract_corpus(tmp_path, tmp_path / "out", ExtractOptions(face_model=str(face_model)), progress=False)
    groups = ["blendshapes", "aus", "geometry", "measures"]
    features = {}
    for item in list_done_items(tmp_path / "out"):
        media = load_media(tmp_path / "out", item)
        features[Path(media.meta["path"]).stem] = frame_features(media.face, media.frame_size,
                                                                 list(media.meta["au_names"]), groups)[0]
    names = feature_names(groups)
    assert len(names) == 51 + 17 + 80 + len(FEATURE_GROUPS["measures"]) and np.isfinite(features["face"]).all()
    perm, sign = mirror_permutation(names)
    mirrored, flipped = features["face"][perm] * sign, features["flipped"]
    geo = np.array([n.startswith("geo_") for n in names])
    measures = np.array([n.startswith("measure_") for n in names])
    assert np.abs(mirrored[geo] - flipped[geo]).max() < 0.05  # inter-ocular units: the same points
    assert np.abs(features["face"][perm][geo] - flipped[geo]).max() > 0.5  # without negating x: far off
    assert np.abs(features["face"][measures] - flipped[measures]).max() < 0.05
    with pytest.raises(MappingError, match="no mirror partner"):
        mirror_permutation(["bs_browDownLeft"])  # its partner browDownRight is not among the features


@pytest.mark.slow
def test_mirrored_fit_reads_a_face_and_its_mirror_alike(posed_manifest, tmp_path, face_model):
    """A model fitted with mirror augmentation ("mirror": True) gives the same probabilities for a face's
    features and their mirror image; the same model fitted without it does not."""
    from data_prep.extract import ExtractOptions, extract_corpus
    from data_prep.face_emotion import feature_names, mirror_permutation
    from data_prep.face_emotion_fit import (collect_samples, fit_classifier, mapping_from_pipeline,
                                            read_labelled_source)

    extract_corpus(posed_manifest, tmp_path / "out", ExtractOptions(face_model=str(face_model)), progress=False)
    groups = ["blendshapes", "aus", "geometry", "measures"]
    samples = collect_samples(tmp_path / "out", read_labelled_source(posed_manifest), groups)
    assert len(samples.y) == 12
    names = feature_names(groups)
    perm, sign = mirror_permutation(names)
    gaps = {}
    for mirror in (True, False):
        pipeline = fit_classifier(samples.X, samples.y, {"kind": "logreg", "C": 0.01, "mirror": mirror},
                                  features=names)
        mapping = mapping_from_pipeline(pipeline, groups, {})
        gaps[mirror] = np.abs(mapping.predict_proba(samples.X) - mapping.predict_proba(samples.X[:, perm] * sign)).max()
    assert gaps[True] < 1e-3 < gaps[False], gaps
    with pytest.raises(ValueError, match="feature names"):
        fit_classifier(samples.X, samples.y, {"kind": "logreg", "C": 0.01, "mirror": True})


AV_PRETRAIN = SHARED / "data" / "av_pretrain"


@pytest.mark.slow
def test_neutral_read_speech_in_a_corpus_of_many_speakers_is_mostly_neutral(tmp_path, face_model):
    """The defining property of the neutral-centred default mapping (docs/label_audit.md, "Neutral talking
    faces"): GRID s1 reads commands without expression; labelled together with broadcast speech of other
    speakers (LRW-AR), as in the pretraining pool, most of its clips are neutral. The previous default, centred
    on each corpus's mean face, called 3 of these 8 clips neutral (and 80% of the pool's GRID segments fear).
    Neither corpus was used to fit the mapping; GRID s1's pool share served to compare variants."""
    if not AV_PRETRAIN.exists():
        pytest.skip(f"av_pretrain not found at {AV_PRETRAIN} (the shared data folder sits beside the repository "
                    "in CI; a fresh clone does not have it)")
    from data_prep.extract import ExtractOptions, extract_corpus
    from data_prep.label.config import build_label_config
    from data_prep.label.stage import label_corpus

    grid = sorted((AV_PRETRAIN / "grid_s1").glob("*.mp4"))[:8]
    broadcast = sorted((AV_PRETRAIN / "lrw_ar").glob("*.mp4"))[:8]
    pd.DataFrame({"path": [str(p) for p in grid + broadcast],
                  "speaker": ["grid_s1"] * len(grid) + [p.stem for p in broadcast]}).to_csv(tmp_path / "c.csv",
                                                                                            index=False)
    summary = extract_corpus(tmp_path / "c.csv", tmp_path / "out", ExtractOptions(face_model=str(face_model),
                                                                                  max_fps=10), progress=False)
    assert summary.done == 16, summary.report()
    config = build_label_config({"tasks": ["au"], "segmentation": {"mode": "clip"}})
    table = label_corpus(tmp_path / "out", config, dest=tmp_path / "labels", progress=False).table
    table = table[table["au_mask"]]
    grid_classes = table.loc[table["speaker"] == "grid_s1", "au_class"]
    assert len(grid_classes) == 8
    assert (grid_classes == "neutral").sum() >= 6, grid_classes.tolist()


def test_corpus_reference_of_a_mapping(tmp_path):
    """The shipped mapping centres a corpus on its median frame (it was fitted on corpora centred on their
    neutral faces) and says so in its file; a file without the field is a mean-centred mapping of before; an
    unknown reference is a one-line error."""
    from data_prep.face_emotion import (CorpusStatistics, MappingError, corpus_statistics, default_mapping_path,
                                        load_mapping)

    mapping = load_mapping()
    data = json.loads(default_mapping_path().read_text())
    assert mapping.standardise == "corpus" and mapping.corpus_reference == "median"
    assert data["standardisation"]["reference"] == "median" and "neutral" in data["standardisation"]["reference_means"]
    rng = np.random.default_rng(0)
    frames = [rng.gamma(1.0, 1.0, size=(20, len(mapping.features))) for _ in range(6)]  # skewed: mean != median
    stats = corpus_statistics(frames)
    assert isinstance(stats, CorpusStatistics) and not np.allclose(stats.mean, stats.median)
    x = frames[0]
    assert np.allclose(mapping.predict_proba(x, stats), mapping.predict_proba(x, (stats.median, stats.scale)))
    assert not np.allclose(mapping.predict_proba(x, stats), mapping.predict_proba(x, (stats.mean, stats.scale)))
    del data["standardisation"]["reference"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    old = load_mapping(tmp_path / "old.json")
    assert old.corpus_reference == "mean"
    assert np.allclose(old.predict_proba(x, stats), old.predict_proba(x, (stats.mean, stats.scale)))
    data["standardisation"]["reference"] = "mode"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(MappingError, match="corpus reference 'mode'") as err:
        load_mapping(tmp_path / "bad.json")
    assert "\n" not in str(err.value) and "bad.json" in str(err.value)


@pytest.mark.slow
def test_fit_centres_training_corpora_on_their_neutral_faces(posed_manifest, tmp_path, face_model):
    """Fitting with corpus standardisation (the default) centres each corpus on its neutral faces: the neutral
    samples' mean is the origin, and the mapping falls back on the training faces' neutral mean; "corpus-mean"
    keeps the previous mean-centred fit."""
    from data_prep.extract import ExtractOptions, extract_corpus
    from data_prep.face_emotion_fit import collect_samples, fit_face_emotion, read_labelled_source

    extract_corpus(posed_manifest, tmp_path / "out", ExtractOptions(face_model=str(face_model)), progress=False)
    samples = collect_samples(tmp_path / "out", read_labelled_source(posed_manifest), ["blendshapes"])
    neutral = samples.y == 0
    assert np.abs(samples.standardised_by_corpus("neutral")[neutral].mean(0)).max() < 1e-5
    assert np.abs(samples.standardised_by_corpus("mean").mean(0)).max() < 1e-5
    models = {"logreg C=0.03": {"kind": "logreg", "C": 0.03}}
    fitted = fit_face_emotion({"blendshapes": samples}, n_splits=2, models=models, progress=lambda *_: None)
    assert fitted.mapping.corpus_reference == "median"
    assert np.allclose(fitted.mapping.fallback_mean, samples.X[neutral].mean(0))
    before = fit_face_emotion({"blendshapes": samples}, n_splits=2, models=models, progress=lambda *_: None,
                              standardise="corpus-mean")
    assert before.mapping.corpus_reference == "mean" and np.allclose(before.mapping.fallback_mean, samples.X.mean(0))
    with pytest.raises(ValueError, match="standardise 'neutral'"):
        fit_face_emotion({"blendshapes": samples}, n_splits=2, models=models, standardise="neutral")
