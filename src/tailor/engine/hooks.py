"""Capture intermediate tensors with forward hooks on module paths (models are never edited)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping, Sequence

from torch import Tensor, nn

from ..dist import unwrap


@contextmanager
def capture(
    model: nn.Module, paths: Mapping[str, str] | Sequence[str], *, inputs: bool = False
) -> Iterator[dict[str, Tensor]]:
    """Record the output (or first input) of each named submodule during the forward passes inside the block.

    `paths` maps a short name to a dotted module path (a plain list uses the paths as names).
    Tuple outputs are reduced to their first element, the hidden states in HF modules.
    """
    named = dict(paths) if isinstance(paths, Mapping) else {p: p for p in paths}
    root = unwrap(model)
    found: dict[str, Tensor] = {}
    handles = []
    try:
        for name, path in named.items():
            module = root.get_submodule(path)

            def hook(_module, args, output, name=name):
                value = args[0] if inputs else output
                found[name] = value[0] if isinstance(value, (tuple, list)) else value

            handles.append(module.register_forward_hook(hook))
        yield found
    finally:
        for h in handles:
            h.remove()
