"""experiments.recipe_methods: each method's grid against the current recipe's, matched cell for cell."""
from __future__ import annotations

import pandas as pd

import pytest

from avpretext import synthetic
from encoders import build_encoder, save_pretrained
from experiments.recipe_methods import main
from finetune.recipes import prepare_csv, write_manifest

TINY = {"channels": [8, 16, 32], "dim": 32, "n_mels": 40}


@pytest.mark.slow
def test_methods_are_compared_with_the_current_recipe_on_matched_cells(tmp_path, capsys):
    rows = prepare_csv(synthetic.write_labeled_speech(tmp_path / "speech", speakers=6, per_class=3),
                       gender_column="gender", split_column="split", fold_column="fold")
    manifest = write_manifest(rows, tmp_path / "m.csv")
    save_pretrained(build_encoder("cnn", **TINY), tmp_path / "pre")
    argv = ["--manifest", str(manifest), "--pretrained", str(tmp_path / "pre"), "--work", str(tmp_path / "work"),
            "--methods", "adversarial", "--fractions", "1.0", "--seeds", "0",
            "--archive", str(tmp_path / "archive")]
    argv += [a for s in ("epochs=1", "num_folds=2", "dev_speakers=1", "num_workers=0", "max_seconds=1.0",
                         "eval_max_seconds=1.0", "batch_size=8", "save_model=false") for a in ("--set", s)]
    # The archive of an earlier run: a block this run does not measure (mixup at 10%, against its current cells)
    # is kept; a block it measures again (adversarial at 100%) is replaced whole.
    earlier = [{"mode": "finetune", "init": init, "fraction": 0.1, "fold": fold, "seed": 0, "uar": uar,
                "macro_f1": uar, "accuracy": uar, "best_epoch": 1, "train_seconds": 1.0, "method": method}
               for init in ("scratch", "pretrained") for fold in ("fold0", "fold1")
               for method, uar in (("current", 0.30), ("mixup", 0.35))]
    earlier += [{**earlier[0], "fraction": 1.0, "method": "adversarial", "uar": 0.99}]
    (tmp_path / "archive").mkdir()
    pd.DataFrame(earlier).to_csv(tmp_path / "archive" / "cells.csv", index=False)
    main(argv)
    table = pd.read_csv(tmp_path / "work" / "methods.csv")
    assert sorted(zip(table["method"], table["init"], table["fraction"])) == [
        ("adversarial", "pretrained", 1.0), ("adversarial", "scratch", 1.0), ("mixup", "pretrained", 0.1),
        ("mixup", "scratch", 0.1)]
    assert (table["pairs"] == 2).all()  # 2 folds x 1 seed, matched
    assert (table[table["method"] == "mixup"]["diff"].round(2) == 5.0).all()  # the archived block's comparison
    cells = {m: pd.read_csv(tmp_path / "work" / m / "cells.csv") for m in ("current", "adversarial")}
    key = ["init", "fraction", "fold", "seed"]
    merged = cells["adversarial"].merge(cells["current"], on=key, suffixes=("", "_current"))
    expected = 100 * (merged["uar"] - merged["uar_current"]).groupby(merged["init"]).mean()
    got = table[(table["method"] == "adversarial")].set_index("init")["diff"]
    assert (got - expected).abs().max() < 0.01  # the CSV rounds to 2 decimals
    assert "| adversarial | pretrained | 100% | 2 |" in (tmp_path / "work" / "methods.md").read_text()
    archived = pd.read_csv(tmp_path / "archive" / "cells.csv")  # every cell of both methods, to commit
    assert sorted(archived["method"].value_counts().items()) == [("adversarial", 4), ("current", 8), ("mixup", 4)]
    assert 0.99 not in set(archived["uar"])  # the re-measured block's archived cell is gone
    assert (tmp_path / "archive" / "methods.md").read_text() == (tmp_path / "work" / "methods.md").read_text()
    # The settings reached the cells: the adversarial grid's cells record their options.
    import json
    config = json.loads(next((tmp_path / "work" / "adversarial" / "cells").glob("*/config.json")).read_text())
    assert config["speaker_adversarial"] is True and config["speaker_weight"] == 0.3 and config["epochs"] == 1
    # ... and where each cell ran (fine-tuning repeats on one machine, not across machines)
    cells_run = list((tmp_path / "work" / "adversarial" / "cells").glob("*/config.json"))
    assert all((c.parent / "environment.jsonl").read_text().count("\n") == 1 for c in cells_run)
    # --report re-renders an archive's comparison without running anything (no manifest, encoder or work folder)
    capsys.readouterr()
    main(["--report", str(tmp_path / "archive" / "cells.csv")])
    printed = capsys.readouterr().out
    assert "| adversarial | pretrained | 100% | 2 |" in printed and "| mixup | scratch | 10% | 2 | +5.0 |" in printed
    # --report WORK gathers the finished cells of a grid folder (one still running, or stopped) the same way
    main(["--report", str(tmp_path / "work"), "--archive", str(tmp_path / "partial")])
    printed = capsys.readouterr().out
    assert "| adversarial | pretrained | 100% | 2 |" in printed and "mixup" not in printed
    assert len(pd.read_csv(tmp_path / "partial" / "cells.csv")) == 8  # current + adversarial, 2 inits x 2 folds


def test_replicate_compares_the_same_cells_of_two_runs(tmp_path, capsys):
    """--report A --replicate B: per block, A - B over matched cells (mean, interval, per-cell SD and range);
    cells only one run has are left out of the pairs."""
    def cells(shift):
        return pd.DataFrame([{"mode": "finetune", "init": "scratch", "fraction": 0.1, "fold": f"fold{f}", "seed": s,
                              "uar": 0.30 + 0.01 * f + shift(f, s), "macro_f1": 0.3, "accuracy": 0.3,
                              "best_epoch": 1, "train_seconds": 1.0, "method": "current"}
                             for f in range(2) for s in range(2)])
    this = cells(lambda f, s: 0.02 * (s + 1))  # +2 and +4 points per seed
    other = pd.concat([cells(lambda f, s: 0.0), cells(lambda f, s: 0.0).assign(seed=9)])  # seed 9: unmatched
    this.to_csv(tmp_path / "this.csv", index=False)
    other.to_csv(tmp_path / "other.csv", index=False)
    main(["--report", str(tmp_path / "this.csv"), "--replicate", str(tmp_path / "other.csv")])
    printed = capsys.readouterr().out
    assert "| current | scratch | 10% | 4 | +3.0 |" in printed
    assert "| 1.2 | +2.0 to +4.0 |" in printed  # SD of (2, 4, 2, 4) = 1.15
