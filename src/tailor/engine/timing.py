"""Side-by-side timing for `tailor bench`: the compared functions alternate call by call, so a
change in machine load hits all of them alike and their ratio stays meaningful."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping

import torch


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    fns: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1, device: torch.device | str | None = None
) -> dict[str, float]:
    """Median seconds per call of each function, calling them round-robin after `warmup` rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}
