"""Progress of a run counted in optimizer steps, shown by the main process only.

On a terminal: a tqdm bar with steps/s, the time left and the latest losses. Elsewhere (a log file, a batch
job's output, a pipe) a bar's carriage returns make one unreadable line, so a plain line is printed instead,
at most every ``interval_s`` seconds and at the last step::

    step 120/2000 (6%)  2.31 steps/s  eta 13m34s  energy 1.234  face 0.871  lr 2.9e-04
"""
from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class StepProgress:
    """``update()`` once per optimizer step, ``show(values)`` with the latest losses, ``write(line)`` for a
    message (it does not break the bar), ``close()`` at the end. A disabled one does nothing."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, stream=None, interval_s: float = 30.0):
        self.total, self.step, self.enabled = total, initial, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.values: dict[str, float] = {}
        self._bar = None
        self._started, self._first = time.monotonic(), initial
        self._printed = None  # monotonic time of the last plain line
        if enabled and self.stream.isatty():
            from tqdm import tqdm  # only a terminal gets a bar

            self._bar = tqdm(total=total, initial=initial, desc="pretrain", unit="step", file=self.stream,
                             dynamic_ncols=True)

    def update(self) -> None:
        if not self.enabled:
            return
        self.step += 1
        if self._bar is not None:
            self._bar.update(1)

    def show(self, values: dict[str, float]) -> None:
        """Latest values (e.g. each task's loss, the learning rate) beside the bar, or as a plain line."""
        if not self.enabled:
            return
        self.values = dict(values)
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in self.values.items()}, refresh=True)
            return
        now = time.monotonic()
        if self._printed is None or now - self._printed >= self.interval_s or self.step >= self.total:
            self._printed = now
            self.write(self.line())

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        done = self.step - self._first
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"  eta {_duration((self.total - self.step) / rate)}" if rate > 0 and self.step < self.total else ""
        shown = "  ".join(f"{k} {v:.3g}" if k == "lr" else f"{k} {v:.3f}" for k, v in self.values.items())
        return (f"step {self.step}/{self.total} ({self.step / max(1, self.total):.0%})  {rate:.2f} steps/s{eta}"
                + (f"  {shown}" if shown else ""))

    def write(self, line: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
