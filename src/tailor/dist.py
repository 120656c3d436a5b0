"""Which process writes: under torchrun/accelerate every rank runs every stage, only rank 0 writes."""
from __future__ import annotations

import os


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process), e.g. before reading what rank 0 wrote."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
