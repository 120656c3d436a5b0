"""Split a batch into length buckets, each padded only to its own longest row.

A padded forward costs about (rows x padded length) tokens plus a fixed cost per forward call
(Python, hooks, small kernels). Sorting rows by length and cutting the sorted run where a cut
saves more padding than a forward costs minimises that sum; the cut points come from an exact
dynamic programme over the sorted lengths (O(n^2) in rows, a few ms at 256 rows). Written by hand:
tokenizers and transformers pad one batch, none of them splits one.
"""

from __future__ import annotations


def padded(length: int, multiple: int) -> int:
    return -(-length // multiple) * multiple


def length_buckets(lengths: list[int], call_cost_tokens: float, multiple: int = 1) -> list[list[int]]:
    """Indices into ``lengths`` grouped into buckets (shortest first) that minimise
    ``sum(rows * padded(longest, multiple)) + call_cost_tokens * buckets``."""
    if call_cost_tokens < 0 or multiple < 1:
        raise ValueError(f"call_cost_tokens must be >= 0 and multiple >= 1, got {call_cost_tokens}, {multiple}")
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    sizes = [padded(lengths[i], multiple) for i in order]
    best, cut = [0.0] + [float("inf")] * len(order), [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        for start in range(end):  # bucket = order[start:end], padded to its last (longest) row
            cost = best[start] + (end - start) * sizes[end - 1] + call_cost_tokens
            if cost < best[end]:
                best[end], cut[end] = cost, start
    buckets, end = [], len(order)
    while end:
        buckets.append(order[cut[end] : end])
        end = cut[end]
    return buckets[::-1]
