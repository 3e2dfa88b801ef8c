"""Matplotlib for files: the one place that picks the backend."""
from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (PNG files, no display needed: servers, CI, worker processes).

    Imported on first use, not at module import: matplotlib takes seconds to load and most runs plot nothing.
    """
    import matplotlib  # heavy: see above

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
