"""Write a fine-tuning manifest from an emotion corpus: a thin command line over ``finetune.recipes``.

    python -m finetune.prepare CORPUS ROOT --out manifest.csv [options]
    python finetune/prepare.py ...                     # the same

CORPUS is one of ``RECIPES`` (ravdess, crema-d, iemocap, msp-podcast, emodb, baved, csv); for ``csv`` ROOT is
the CSV file. Options apply to the recipes that take them (e.g. --seed to crema-d); giving one to another recipe is an
error. Prints a summary (rows, classes, speakers, splits, skipped files). Exit status 2 on bad input.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from collections import Counter

import pandas as pd

from avpretext.common.cli import CommandParser, command_name
from finetune.recipes import RECIPES, write_manifest


def program() -> str:
    """``avpretext-prepare`` when run as that console script, else ``finetune.prepare`` (``python -m``)."""
    return command_name("finetune.prepare", "avpretext-prepare")


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _default(corpus: str, option: str) -> str:
    """The default of one recipe option as the command line writes it (a tuple as comma-separated names)."""
    value = inspect.signature(RECIPES[corpus]).parameters[option].default
    return ",".join(value) if isinstance(value, tuple) else str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog=program(), description="Emotion corpus -> fine-tuning manifest (CSV).")
    parser.add_argument("corpus", choices=sorted(RECIPES), help="corpus recipe (naming convention of its files)")
    parser.add_argument("root", help="the corpus folder (for csv: the CSV file)")
    parser.add_argument("--out", required=True, help="manifest CSV to write")
    # Recipe options: None means "not given", so only options the user chose reach the recipe, and the help
    # shows the recipe's own default.
    parser.add_argument("--seed", type=int,
                        help=f"crema-d: seed of the speaker split (default {_default('crema-d', 'seed')})")
    parser.add_argument("--dev-fraction", type=float,
                        help=f"crema-d: share of speakers in dev (default {_default('crema-d', 'dev_fraction')})")
    parser.add_argument("--test-fraction", type=float,
                        help=f"crema-d: share of speakers in test (default {_default('crema-d', 'test_fraction')})")
    parser.add_argument("--classes", type=_names,
                        help=f"iemocap: comma-separated classes (default {_default('iemocap', 'classes')})")
    parser.add_argument("--test-sets", type=_names, help="msp-podcast: comma-separated Split_Set values used as "
                        f"test (default {_default('msp-podcast', 'test_sets')})")
    for column in ("path", "label", "speaker", "gender", "split", "fold"):
        parser.add_argument(f"--{column}-column", help=f"csv: the column holding {column}")
    return parser


def _recipe_options(args: argparse.Namespace, recipe) -> dict:
    """The options given on the command line, checked against what the recipe accepts."""
    given = {key: value for key, value in vars(args).items()
             if key not in ("corpus", "root", "out") and value is not None}
    accepted = set(inspect.signature(recipe).parameters) - {"root", "path"}
    wrong = sorted(given.keys() - accepted)
    if wrong:
        def flags(keys):
            return ", ".join("--" + key.replace("_", "-") for key in sorted(keys)) or "none"
        raise ValueError(f"{flags(wrong)}: not an option of {args.corpus} (its options: {flags(accepted)})")
    return given


def summarize(df: pd.DataFrame) -> str:
    """Rows, classes with counts, speakers (by gender), splits and folds, skipped files by reason."""
    lines = [f"{len(df)} rows"]
    lines.append("classes: " + ", ".join(f"{label} {n}" for label, n in df["label"].value_counts().items()))
    genders = df.groupby("gender")["speaker"].nunique()
    lines.append(f"speakers: {df['speaker'].nunique()} ("
                 + ", ".join(f"{gender or 'unknown'} {n}" for gender, n in genders.items()) + ")")
    if (df["split"] != "").any():
        by_split = df.groupby("split")["speaker"].agg(["size", "nunique"])
        lines.append("splits: " + ", ".join(f"{split or '(none)'} {row['size']} rows / {row['nunique']} speakers"
                                            for split, row in by_split.iterrows()))
    if (df["fold"] >= 0).any():
        folds = df["fold"].value_counts().sort_index()
        lines.append("folds: " + ", ".join(f"{fold}: {n}" for fold, n in folds.items()))
    skipped = Counter(reason for _path, reason in df.attrs.get("skipped", []))
    if skipped:
        lines.append(f"skipped {sum(skipped.values())}: "
                     + "; ".join(f"{reason} ({n})" for reason, n in skipped.most_common()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    recipe = RECIPES[args.corpus]
    try:
        df = recipe(args.root, **_recipe_options(args, recipe))
        out = write_manifest(df, args.out)
    except ValueError as err:
        print(f"{program()}: error: {err}", file=sys.stderr)
        return 2
    print(summarize(df))
    print(f"wrote {out} (load with finetune.recipes.load_manifest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
