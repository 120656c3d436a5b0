"""Objectives: a loss is a weighted sum of named terms, each logged on its own.

Borrowed from torchdistill's weighted-sum losses, without its code-executing YAML: an objective is
plain Python that returns unweighted terms; the trainer applies `weights` and logs every term.
Also here: distances between a model's weights and reference weights (ℓ2 and the MARS norm), shared
by the fine-tuning regularisers and self-distillation's Weight-Matching ablation (written by hand:
no library has the MARS norm).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Objective(Protocol):
    weights: Mapping[str, float]

    def terms(self, model: nn.Module, batch: dict[str, Tensor], teacher: nn.Module | None) -> dict[str, Tensor]:
        """Unweighted, named loss terms for one batch (scalars that require grad)."""


def weighted_sum(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """Total loss; a term without a weight counts once, a weight of 0 drops the term."""
    return torch.stack([weights.get(name, 1.0) * value for name, value in terms.items()]).sum()


def model_inputs(batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The batch without labels, so models never compute (and waste time on) their own loss."""
    return {k: v for k, v in batch.items() if k != "labels"}


class CrossEntropy:
    """Supervised classification: cross-entropy of the model's logits against `labels`."""

    def __init__(self, label_smoothing: float = 0.0):
        self.weights = {"ce": 1.0}
        self.label_smoothing = label_smoothing

    def terms(self, model, batch, teacher=None):
        logits = model(**model_inputs(batch)).logits
        return {"ce": F.cross_entropy(logits, batch["labels"], label_smoothing=self.label_smoothing)}


def _pairs(student: Iterable[tuple[str, torch.Tensor]], reference: dict[str, torch.Tensor]):
    for name, param in student:
        if name in reference:
            yield name, param, reference[name].to(param.device, param.dtype)


def weight_l2(named_params: Iterable[tuple[str, torch.Tensor]], reference: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ ||θ − θ_ref||²₂ over the parameters that ``reference`` names."""
    terms = [(p - r).pow(2).sum() for _, p, r in _pairs(named_params, reference)]
    if not terms:
        raise ValueError("weight_l2: no parameter name is shared with the reference weights")
    return torch.stack(terms).sum()


def mars_norm(delta: torch.Tensor) -> torch.Tensor:
    """Maximum absolute row sum max_j Σ_i |Δ_{j,i}| of a weight (output dim first; conv kernels flattened)."""
    return delta.flatten(1).abs().sum(dim=1).max()


def weight_mars(named_params: Iterable[tuple[str, torch.Tensor]], reference: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ over weight matrices of the MARS norm of θ − θ_ref (Gouk et al., 2021).

    Only parameters with ≥ 2 dimensions count (linear and conv weights; Gouk et al. constrain those).
    """
    terms = [mars_norm(p - r) for _, p, r in _pairs(named_params, reference) if p.dim() >= 2]
    if not terms:
        raise ValueError("weight_mars: no weight matrix is shared with the reference weights")
    return torch.stack(terms).sum()
