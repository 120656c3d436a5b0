"""Binary weight masks: the Mask type, which weights are prunable, masks from scores in the
unstructured, channel and N:M patterns (``patterns.py`` dispatches, heads patterns included),
holding masks fixed through training, safetensors I/O and per-layer sparsity reports.

Hand-written (torch.nn.utils.prune keeps masks as forward hooks and cannot rank globally across
patterns). A :class:`Mask` maps parameter names to validated 0/1 tensors (stored as bool) of the
parameter's shape, after open_lth's ``pruning/mask.py``; it saves and loads as safetensors and
reports its sparsity overall and per layer.
Channel masks also cover the output channel's bias and the BatchNorm that follows the conv, so a
pruned channel outputs exactly zero and can be removed physically (``structured.py``).
Sparsity is always the fraction of prunable *weights* removed (0.99 keeps 1%); biases and
BatchNorm entries ride along and are not counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ...files import atomic_save_safetensors
from .config import MaskSpec

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


class Mask(dict):
    """``{parameter name: bool tensor}``; every entry is checked to hold only 0/1 (open_lth's ``Mask``)."""

    def __init__(self, other: Mapping[str, torch.Tensor] | None = None):
        super().__init__()
        self.update(other or {})

    def __setitem__(self, name: str, value: torch.Tensor) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a mask entry needs a parameter name, got {name!r}")
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"mask '{name}' must be a torch.Tensor, got {type(value).__name__}")
        if value.dtype != torch.bool:
            if ((value != 0) & (value != 1)).any():
                raise ValueError(f"mask '{name}' holds values other than 0 and 1")
            value = value.to(torch.bool)
        super().__setitem__(name, value)

    def update(self, other=(), **kwargs) -> None:  # dict.update would bypass the check
        for k, v in dict(other, **kwargs).items():
            self[k] = v

    @classmethod
    def ones_like(cls, weights: Mapping[str, torch.Tensor]) -> "Mask":
        return cls({k: torch.ones_like(w, dtype=torch.bool) for k, w in weights.items()})

    def save(self, path: Path, meta: Mapping[str, object] | None = None) -> None:
        """Write as bool safetensors (atomically); ``meta`` goes into the header as JSON strings."""
        atomic_save_safetensors(
            {k: v.contiguous() for k, v in self.items()},
            path,
            metadata={k: json.dumps(v) for k, v in (meta or {}).items()},
        )

    @classmethod
    def load(cls, path: Path) -> "Mask":
        return cls(load_file(str(path)))

    def layers(self) -> dict[str, dict[str, float]]:
        """Per weight (masks of dim >= 2; bias/BatchNorm masks ride along uncounted): total, kept, sparsity."""
        out = {}
        for k, m in self.items():
            if m.dim() < 2:
                continue
            total, kept = m.numel(), int(m.sum())
            out[k] = {"total": total, "kept": kept, "sparsity": 1 - kept / total}
        return out

    @property
    def sparsity(self) -> float:
        """Fraction of the masked weights removed (0.99 keeps 1%)."""
        return self.report()["sparsity"]

    def report(self) -> dict[str, object]:
        """Overall and per-layer sparsity of the masked weights, dead layers listed (``sparsity.json``)."""
        layers = self.layers()
        total = sum(v["total"] for v in layers.values())
        kept = sum(v["kept"] for v in layers.values())
        return {
            "sparsity": 1 - kept / max(total, 1),
            "total": total,
            "kept": kept,
            "dead_layers": [k for k, v in layers.items() if v["kept"] == 0],
            "layers": layers,
        }


def prunable_weights(
    model: nn.Module, include: Iterable[str] | None, exclude: Iterable[str] = ()
) -> dict[str, nn.Parameter]:
    """Weights of conv/linear modules whose name matches an ``include`` regex (all if None) and no ``exclude``."""
    inc = [re.compile(p) for p in include] if include is not None else None
    exc = [re.compile(p) for p in exclude]
    out = {}
    for mod_name, mod in model.named_modules():
        if not isinstance(mod, PRUNABLE_TYPES):
            continue
        name = f"{mod_name}.weight" if mod_name else "weight"
        if inc is not None and not any(p.search(name) for p in inc):
            continue
        if any(p.search(name) for p in exc):
            continue
        out[name] = mod.weight
    if not out:
        raise ValueError(f"no prunable conv/linear weight matches include={include} exclude={list(exclude)}")
    return out


# ----------------------------------------------------------------------------- scores -> masks
def _keep_top(flat: torch.Tensor, keep: int) -> torch.Tensor:
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[torch.topk(flat, keep, sorted=False).indices] = True
    return mask


def keep_top_fraction(
    units: Mapping[str, torch.Tensor], keep_frac: float, scope: str, min_keep: int = 0
) -> dict[str, torch.Tensor]:
    """Keep the top ``keep_frac`` of units (weights, channels, heads) by score, globally or per tensor."""
    if scope == "layerwise":
        return {
            k: _keep_top(s.flatten(), max(min_keep, round(keep_frac * s.numel()))).view_as(s) for k, s in units.items()
        }
    flat = torch.cat([s.flatten() for s in units.values()])
    kept = _keep_top(flat, max(1, round(keep_frac * flat.numel()))).split([s.numel() for s in units.values()])
    out = {}
    for (k, s), m in zip(units.items(), kept):
        if int(m.sum()) < min_keep:  # never let global ranking kill a whole layer's channels
            m = _keep_top(s.flatten(), min_keep)
        out[k] = m.view_as(s)
    return out


def _channel_scores(w: torch.Tensor) -> torch.Tensor:
    """Mean |w| per output channel: an L1 norm made comparable across layers of different fan-in."""
    return w.abs().flatten(1).mean(dim=1)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the ``n`` largest of every ``m`` consecutive entries along the input dimension."""
    moved = scores.movedim(1, -1)  # [out, (k...), in]
    groups = moved.reshape(-1, m)
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, torch.topk(groups, n, dim=1).indices, True)
    return keep.reshape(moved.shape).movedim(-1, 1)


def masks_from_scores(scores: Mapping[str, torch.Tensor], spec: MaskSpec) -> Mask:
    """Weight masks (shape of each weight) keeping the top (1 - sparsity) by score in ``spec.pattern``."""
    scores = {k: s.detach().float() for k, s in scores.items()}
    if spec.pattern == "unstructured":
        return Mask(keep_top_fraction(scores, 1 - spec.sparsity, spec.scope))
    if spec.pattern == "nm":
        return Mask({k: nm_mask(s, spec.n, spec.m) for k, s in scores.items()})
    channels = keep_top_fraction(
        {k: _channel_scores(s) for k, s in scores.items()}, 1 - spec.sparsity, spec.scope, min_keep=1
    )
    return Mask(
        {k: c.view(-1, *([1] * (scores[k].dim() - 1))).expand_as(scores[k]).clone() for k, c in channels.items()}
    )


def channel_followers(model: nn.Module) -> dict[str, list[str]]:
    """For each conv/linear weight, the parameters indexed by its output channels: its bias and the
    BatchNorm that directly follows it among its siblings (``conv1`` -> ``bn1``, ``Sequential(conv, bn)``)."""
    out: dict[str, list[str]] = {}
    for parent_name, parent in model.named_modules():
        prefix = f"{parent_name}." if parent_name else ""
        children = list(parent.named_children())
        for i, (name, mod) in enumerate(children):
            if not isinstance(mod, PRUNABLE_TYPES):
                continue
            followers = [f"{prefix}{name}.bias"] if mod.bias is not None else []
            width = mod.weight.shape[0]
            for next_name, nxt in children[i + 1 : i + 2]:
                if isinstance(nxt, nn.modules.batchnorm._BatchNorm) and nxt.num_features == width and nxt.affine:
                    followers += [f"{prefix}{next_name}.weight", f"{prefix}{next_name}.bias"]
            out[f"{prefix}{name}.weight"] = followers
    return out


def with_channel_followers(model: nn.Module, masks: Mask) -> Mask:
    """Add masks for biases/BatchNorm affine parameters of channels whose whole filter is pruned."""
    followers = channel_followers(model)
    out = Mask(masks)
    for name, m in masks.items():
        alive = m.flatten(1).any(dim=1)
        for f in followers.get(name, []):
            out[f] = alive.clone()
    return out


# ----------------------------------------------------------------------------- applying, holding fixed
def _params(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> dict[str, nn.Parameter]:
    params = dict(model.named_parameters())
    missing = [k for k in masks if k not in params]
    if missing:
        raise KeyError(f"mask names not in the model: {missing[:5]} (model has e.g. {list(params)[:5]})")
    bad = [k for k, m in masks.items() if m.shape != params[k].shape]
    if bad:
        raise ValueError(f"mask shape differs from the parameter for {bad[:5]}")
    return {k: params[k] for k in masks}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero the masked entries of the model's parameters in place."""
    for k, p in _params(model, masks).items():
        p.mul_(masks[k].to(p.device, p.dtype))


class MaskEnforcer:
    """Keeps masked weights exactly zero through training.

    Gradient hooks zero the gradient of pruned entries, so Adam/SGD moments never see them; after each
    optimizer step :meth:`after_step` re-zeroes the weights and every optimizer-state tensor of the
    weight's shape (momentum, Adam moments), so weight decay or a resumed state cannot revive them.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor]):
        self.params = _params(model, masks)
        self.masks = {k: masks[k].to(p.device, p.dtype) for k, p in self.params.items()}
        self.handles = [
            p.register_hook(lambda g, k=k: g * self._mask(k, g)) for k, p in self.params.items() if p.requires_grad
        ]
        apply_masks(model, masks)

    def _mask(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The mask on ``like``'s device (the trainer may move the model after the enforcer is built)."""
        m = self.masks[name]
        if m.device != like.device or m.dtype != like.dtype:
            m = self.masks[name] = m.to(like.device, like.dtype)
        return m

    @torch.no_grad()
    def after_step(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        for k, p in self.params.items():
            m = self._mask(k, p)
            p.mul_(m)
            state = optimizer.state.get(p, {}) if optimizer is not None else {}
            for v in state.values():
                if isinstance(v, torch.Tensor) and v.shape == p.shape:
                    v.mul_(m)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
