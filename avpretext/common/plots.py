"""Matplotlib for files: the one place that picks the backend."""
from __future__ import annotations

from pathlib import Path

from avpretext.common.io import write_atomic


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (PNG files, no display needed: servers, CI, worker processes).

    Imported on first use, not at module import: matplotlib takes seconds to load and most runs plot nothing.
    """
    import matplotlib  # heavy: see above

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG atomically (a reader never sees half a plot), close it."""
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    pyplot().close(fig)
    return Path(path)
