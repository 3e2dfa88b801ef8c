"""``python -m data_prep``: the ``data_prep`` command, which lives with the label stage (data_prep/label/cli.py)."""
from data_prep.label.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
