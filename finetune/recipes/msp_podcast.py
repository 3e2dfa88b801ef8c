"""MSP-Podcast: categories, dimensional ratings, speakers and partitions from ``labels_consensus.csv``."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from .manifest import UNKNOWN_SPEAKERS
from .parsing import Skip, build_manifest, collect_rows, corpus_root, manifest_row, parse_gender, read_table

MSP_PODCAST_EMOTIONS = {"A": "angry", "S": "sad", "H": "happy", "U": "surprised", "F": "fearful", "D": "disgust",
                        "C": "contempt", "N": "neutral"}  # O (other) and X (no agreement) are dropped
MSP_PODCAST_SPLITS = {"Train": "train", "Development": "dev"}  # test sets: the test_sets option

_COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set")


def prepare_msp_podcast(root, test_sets: Sequence[str] = ("Test1",)) -> pd.DataFrame:
    """MSP-Podcast: ``Labels/labels_consensus.csv`` and audio in ``Audios/<FileName>``.

    EmoClass maps to ``MSP_PODCAST_EMOTIONS`` (O other and X no agreement are dropped). Split_Set Train ->
    train, Development -> dev, the ``test_sets`` -> test; other test sets are dropped. Speaker is SpkrID as a
    string ("Unknown" -> "unknown", kept); arousal/valence/dominance are EmoAct/EmoVal/EmoDom. Rows whose audio
    file is missing are skipped.
    """
    root = corpus_root(root, "Labels/labels_consensus.csv and Audios/")
    labels = root / "Labels" / "labels_consensus.csv"
    if not labels.is_file():
        raise ValueError(f"{root}: no label file Labels/labels_consensus.csv")
    table = read_table(labels, _COLUMNS)
    split_of = {**MSP_PODCAST_SPLITS, **{name: "test" for name in test_sets}}
    audio = root / "Audios"

    def parse(record: dict) -> dict:
        path = audio / record["FileName"]
        if record["EmoClass"] not in MSP_PODCAST_EMOTIONS:
            raise Skip(f"EmoClass {record['EmoClass']} has no category")
        if record["Split_Set"] not in split_of:
            raise Skip(f"Split_Set {record['Split_Set']} not used")
        if not path.is_file():
            raise Skip("audio file missing")
        speaker = record["SpkrID"].strip()
        return manifest_row(path, MSP_PODCAST_EMOTIONS[record["EmoClass"]],
                            "unknown" if speaker.lower() in UNKNOWN_SPEAKERS else speaker,
                            parse_gender(record["Gender"]), split_of[record["Split_Set"]], arousal=record["EmoAct"],
                            valence=record["EmoVal"], dominance=record["EmoDom"])

    rows, skipped = collect_rows(table.to_dict("records"), parse, path_of=lambda r: str(audio / r["FileName"]))
    return build_manifest(rows, skipped, labels, "Audios/<FileName>")
