"""Which weights a sparsity pattern scores, and how their scores become a ticket's mask.

Unstructured, channel and N:M work on any conv/linear weight (``masks.py``); ``heads`` and
``heads_ffn`` score a transformer encoder's attention heads and FFN neurons
(``transformer_structured.py``). Every scheme (OMP, A-IMP, LMP) goes through these two functions,
so each pattern works with each scheme.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .config import MaskSpec
from .masks import Mask, masks_from_scores, prunable_weights, with_channel_followers
from .transformer_structured import UNIT_PATTERNS, unit_masks, unit_weights

# resnet_cifar: only the block-internal channels can be removed physically (the others are added
# to the residual stream), so they are the default for the channel pattern on that model.
_RESNET_INNER = r"blocks\.\d+\.conv1\.weight$"


def default_include(model: nn.Module, pattern: str) -> list[str] | None:
    if pattern == "channel" and getattr(getattr(model, "config", None), "model_type", None) == "resnet_cifar":
        return [_RESNET_INNER]
    return None


def spec_weights(model: nn.Module, spec: MaskSpec) -> dict[str, nn.Parameter]:
    """The weights ``spec`` scores; for N:M, layers whose input dimension is not a multiple of M stay
    dense; for heads/heads_ffn, the encoder's Q/K/V (and FFN input) weights."""
    include = spec.include if spec.include is not None else default_include(model, spec.pattern)
    weights = prunable_weights(model, include, spec.exclude)
    if spec.pattern in UNIT_PATTERNS:
        return {k: w for k, w in unit_weights(model, spec.pattern).items() if k in weights}
    if spec.pattern == "nm":
        weights = {k: w for k, w in weights.items() if w.shape[1] % spec.m == 0}
    return weights


def draw_masks(model: nn.Module, scores: Mapping[str, torch.Tensor], spec: MaskSpec) -> Mask:
    if spec.pattern in UNIT_PATTERNS:
        return unit_masks(model, scores, spec.pattern, 1 - spec.sparsity, spec.scope)
    masks = masks_from_scores(scores, spec)
    return with_channel_followers(model, masks) if spec.pattern == "channel" else masks
