"""Which process writes (under torchrun/accelerate every rank runs every stage, only rank 0 writes),
and the user's model inside the data-parallel wrapper."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import nn


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process), e.g. before reading what rank 0 wrote.

    accelerate starts the process group when no Trainer has yet (a stage that trains nothing).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def on_main_process(write: Callable[[], object]) -> None:
    """Run `write` on rank 0 only; then every rank waits until it is on disk, so all may read it."""
    if is_main_process():
        write()
    barrier()


def unwrap(model: "nn.Module") -> "nn.Module":
    """The user's module inside DDP/accelerate wrappers, so module paths stay the same."""
    from torch import nn

    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model
