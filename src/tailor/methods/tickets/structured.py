"""Export a channel-pruned resnet_cifar ticket as a physically smaller model (and dispatch a
transformer ticket to ``transformer_structured``: :func:`export_smaller`).

Only block-internal channels (conv1 -> bn1 -> conv2 of a BasicBlock) can be removed: the other
channels are summed into the residual stream. A pruned internal channel has zero conv1 filter and
zero bn1 scale/shift (``masks.with_channel_followers``), so in eval mode it outputs relu(0) = 0 and
removing it together with conv2's matching input slice leaves the function unchanged. The result
is an ordinary ResNetCifarForImageClassification whose config lists per-block ``inner_channels``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .masks import Mask, apply_masks


def _slice_bn(bn: nn.BatchNorm2d, keep: torch.Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        t = getattr(bn, name)
        t.data = t.data[keep].clone()
    bn.num_features = int(keep.sum())


def _bn_output_of_zero(bn: nn.BatchNorm2d) -> torch.Tensor:
    """What an eval-mode BatchNorm outputs for a channel whose input is 0 (removable iff relu of it is 0)."""
    return bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)


@torch.no_grad()
def export_channel_pruned(model: nn.Module, masks: Mask) -> nn.Module:
    """A smaller copy of a masked resnet_cifar model with its dead internal channels removed."""
    if getattr(getattr(model, "config", None), "model_type", None) != "resnet_cifar":
        raise ValueError(
            "physical channel removal is implemented for resnet_cifar models only; "
            f"got model_type {getattr(getattr(model, 'config', None), 'model_type', None)!r}"
        )
    small = copy.deepcopy(model)
    apply_masks(small, masks)
    blocks = small.resnet.blocks if hasattr(small, "resnet") else small.blocks
    inner = []
    for block in blocks:
        keep = block.conv1.weight.flatten(1).ne(0).any(dim=1) | _bn_output_of_zero(block.bn1).gt(0)
        if not keep.any():  # keep one channel so the block stays a valid conv (its output is 0 anyway)
            keep[0] = True
        block.conv1.weight.data = block.conv1.weight.data[keep].clone()
        block.conv1.out_channels = int(keep.sum())
        _slice_bn(block.bn1, keep)
        block.conv2.weight.data = block.conv2.weight.data[:, keep].clone()
        block.conv2.in_channels = int(keep.sum())
        inner.append(int(keep.sum()))
    small.config.inner_channels = inner
    if hasattr(small, "resnet"):
        small.resnet.config = small.config
    return small


def export_smaller(model: nn.Module, masks: Mask) -> nn.Module:
    """The ticket physically smaller: a resnet_cifar's pruned inner channels, or a transformer
    encoder's pruned heads and FFN neurons, removed. ValueError when neither applies."""
    from .transformer_structured import export_heads_and_neurons

    if getattr(getattr(model, "config", None), "model_type", None) == "resnet_cifar":
        return export_channel_pruned(model, masks)
    return export_heads_and_neurons(model, masks)
