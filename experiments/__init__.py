"""Experiments behind docs/results.md and docs/scaling.md; run from the repository root as
``python -m experiments.NAME``."""
