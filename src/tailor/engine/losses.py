"""Objectives: a loss is a weighted sum of named terms, each logged on its own.

Borrowed from torchdistill's weighted-sum losses, without its code-executing YAML: an objective is
plain Python that returns unweighted terms; the trainer applies `weights` and logs every term.
"""
from __future__ import annotations

from typing import Mapping, Protocol

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
