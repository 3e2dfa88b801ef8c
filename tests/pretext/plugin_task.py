"""A pretext task defined outside the package, as a user would: is the segment longer than its median?"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pretext.tasks.base import ClassificationTask
from pretext.tasks.labelling import MedianSplitConfig, label_high_low


@dataclass
class DurationConfig(MedianSplitConfig):
    group: str = "corpus"


class DurationTask(ClassificationTask):
    name = "duration"
    Config = DurationConfig
    classes = ("short", "long")

    def segment_values(self, media, segments, cfg, context=None):
        return [{"duration_value": end - start} for start, end in segments]

    def assign_labels(self, table: pd.DataFrame, cfg):
        return label_high_low(table, self.name, pd.Series(True, index=table.index), cfg)
