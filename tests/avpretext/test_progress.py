"""Step progress (avpretext.common.progress): a tqdm bar on a terminal (a real pseudo-terminal here), plain lines
elsewhere, nothing when disabled (the other processes of a DDP run)."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios

from avpretext.common.progress import StepProgress


def test_a_terminal_gets_a_bar_with_rate_and_losses():
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # rows, columns
    with os.fdopen(follower, "w") as terminal:
        progress = StepProgress(total=4, stream=terminal)
        for _ in range(4):
            progress.update()
            progress.show({"energy": 1.25, "lr": 3e-4})
        progress.write("step 4 validation (8 segments): energy 1.300")
        progress.close()
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower end is closed and everything was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    text = shown.decode()
    assert "\r" in text and "pretrain" in text and "4/4" in text and "step/s" in text, text
    assert "energy=1.25" in text and "step 4 validation" in text, text


def test_elsewhere_plain_lines_at_most_every_interval_and_at_the_end():
    stream = io.StringIO()
    progress = StepProgress(total=10, stream=stream, interval_s=3600)
    for _ in range(10):
        progress.update()
        progress.show({"energy": 1.25, "face": 0.5, "lr": 3e-4})
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()  # the first, then (within the hour) only the last
    assert lines[0].startswith("step 1/10 (10%)") and "steps/s" in lines[0] and "eta" in lines[0]
    assert lines[1].startswith("step 10/10 (100%)") and "energy 1.250  face 0.500  lr 0.0003" in lines[1]


def test_disabled_progress_prints_nothing():
    stream = io.StringIO()
    progress = StepProgress(total=3, enabled=False, stream=stream)
    progress.update()
    progress.show({"energy": 1.0})
    progress.write("hello")
    progress.close()
    assert stream.getvalue() == ""
