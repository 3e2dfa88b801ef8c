"""The life of a multi-process run (torchrun / ``accelerate launch``; gloo on CPU, NCCL on GPU): workers that end
with their launcher, and a clean end."""
from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def finish_processes() -> None:
    """Wait for every process, then destroy the process group (no-op in a single-process run).

    Call it once, at the end of a command, after the last collective and the last write. Without the barrier
    a process that finishes first tears down its connections while another is still writing or inside a
    collective; without the destroy, gloo's worker threads outlive the interpreter. Either way gloo can abort
    a process at exit ("terminate called without an active exception", SIGABRT) after all its work is done,
    and the launcher then reports the whole run as failed. Call it after the training function has returned:
    a DDP-wrapped model holds the process group too, often through reference cycles that only a garbage
    collection frees, and ``destroy_process_group`` only drops the group from torch's own tables; a group
    still held then dies during interpreter shutdown, with the same abort.
    """
    import gc

    import torch.distributed as dist  # torch is heavy: the common layer loads it only where used

    if dist.is_available() and dist.is_initialized():
        gc.collect()  # the finished run's DDP wrappers (and their hold on the group) go first
        dist.barrier()
        dist.destroy_process_group()


def launched_worker() -> bool:
    """True in a worker started by torchrun / ``accelerate launch`` (torch's elastic agent sets these)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or ("LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ)


def die_with_launcher() -> bool:
    """In a launched worker on Linux, ask the kernel to SIGKILL this process when its launcher dies.

    torch's launcher starts each worker in a session of its own, so a launcher killed by a signal it cannot
    handle (SIGKILL, or an OOM kill) leaves its workers training, unseen, beside the next run. With
    ``PR_SET_PDEATHSIG`` they end with it. Returns whether it was set (not outside a launcher, not off Linux).
    """
    if not launched_worker() or not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the launcher died before the request was in place
        os.kill(os.getpid(), signal.SIGKILL)
    return True
