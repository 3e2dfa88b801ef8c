"""Benchmarks that print measured ratios side by side; run from the repository root as
``python -m benchmarks.NAME``."""
