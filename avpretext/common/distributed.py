"""Ending a multi-process run cleanly (torchrun / ``accelerate launch``; gloo on CPU, NCCL on GPU)."""
from __future__ import annotations


def finish_processes() -> None:
    """Wait for every process, then destroy the process group (no-op in a single-process run).

    Call it once, at the end of a command, after the last collective and the last write. Without the barrier
    a process that finishes first tears down its connections while another is still writing or inside a
    collective; without the destroy, gloo's worker threads outlive the interpreter. Either way gloo can abort
    a process at exit ("terminate called without an active exception", SIGABRT) after all its work is done,
    and the launcher then reports the whole run as failed.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
