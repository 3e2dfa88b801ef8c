"""experiments/baseline.py's summary: corpora measured on other splits (a key such as ``baved-devcover``) get
their own rows, paired only with their own eGeMAPS cells. Reads the archived baseline cells of the repository."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from experiments.baseline import report, summary_corpora

CELLS = Path(__file__).resolve().parents[2] / "docs" / "results" / "baseline" / "cells"


def test_a_split_variant_is_summarised_under_its_own_key(tmp_path):
    archive, work = tmp_path / "archive", tmp_path / "work"
    (archive / "cells").mkdir(parents=True)
    shutil.copy(CELLS / "baved.csv", archive / "cells" / "baved.csv")
    variant = pd.read_csv(CELLS / "baved.csv")
    variant.loc[variant["mode"] == "egemaps", "uar"] -= 0.05  # its own eGeMAPS cells, 5 points lower
    variant.to_csv(archive / "cells" / "baved-variant.csv", index=False)
    (work / "experiments" / "other-split" / "baseline").mkdir(parents=True)  # a variant still in a work folder

    assert summary_corpora(work, archive) == ("ravdess", "baved", "baved-variant", "other-split")
    summary = report(work, archive)
    assert set(summary["corpus"]) == {"baved", "baved-variant"}  # no cells for ravdess or other-split here
    compare = summary[summary["method"] == "compare"].set_index(["corpus", "fraction"])["diff_vs_egemaps"]
    for fraction in (0.1, 0.25, 1.0):  # ComParE minus eGeMAPS grows by exactly the variant's 5 points
        assert abs(compare[("baved-variant", fraction)] - compare[("baved", fraction)] - 5.0) < 1e-6
    assert (archive / "summary.csv").is_file()


def test_a_configuration_archived_twice_counts_once(tmp_path):
    archive = tmp_path / "archive"
    (archive / "cells").mkdir(parents=True)
    shutil.copy(CELLS / "baved.csv", archive / "cells" / "baved.csv")
    egemaps = pd.read_csv(CELLS / "baved.csv").query("mode == 'egemaps'")
    first = egemaps.assign(mode="lrprobe", method="lrprobe-enc", uar=egemaps["uar"] + 0.02)
    (archive / "baved_lrprobe").mkdir()
    first.to_csv(archive / "baved_lrprobe" / "cells.csv", index=False)
    # a later folder reads the same encoder again (one cell differs by a clip) beside a new one
    again = first.assign(uar=first["uar"] + 0.001)
    new = egemaps.assign(mode="lrprobe", method="lrprobe-new", uar=egemaps["uar"] + 0.04)
    (archive / "baved_lrprobe_new").mkdir()
    pd.concat([again, new]).to_csv(archive / "baved_lrprobe_new" / "cells.csv", index=False)

    summary = report(tmp_path / "work", archive).set_index(["method", "fraction"])
    for fraction in (0.1, 0.25, 1.0):
        assert summary.loc[("lrprobe-enc", fraction), "cells"] == 12  # not 24
        assert abs(summary.loc[("lrprobe-enc", fraction), "diff_vs_egemaps"] - 2.0) < 1e-6  # the first folder's
        assert abs(summary.loc[("lrprobe-new", fraction), "diff_vs_egemaps"] - 4.0) < 1e-6
