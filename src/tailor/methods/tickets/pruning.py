"""The paper's three ticket-drawing schemes (Fu et al. 2023, Sec. III), model- and engine-agnostic.

- OMP: one-shot magnitude pruning of theta_pre (scores |theta_pre|).
- A-IMP: iterative magnitude pruning whose training between rounds is PGD adversarial training
  (Eq. 1); rounds keep (1-s)^(r/R) of the weights; optional rewinding to theta_pre.
- LMP: real-valued scores on frozen theta_pre, a top-k mask in the forward pass and a
  straight-through estimator in the backward pass. ``rank="signed"`` ranks the raw scores
  (dL/ds = dL/dm); ``rank="abs"`` ranks |s| as edge-popup does (Ramanujan et al. 2020,
  ``GetSubnet`` on ``scores.abs()``), so dL/ds = dL/dm * sign(s); with ``scope: layerwise`` that
  is edge-popup's per-layer top-k.
Training is injected as a callable so these run with the engine or with a plain loop in tests;
``strategies.py`` binds them to a stage's config behind one interface.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from .config import MaskSpec
from .masks import Mask, apply_masks
from .patterns import draw_masks, spec_weights


def omp(model: nn.Module, spec: MaskSpec) -> Mask:
    """One-shot magnitude masks of the model's current weights (the model is not modified)."""
    return draw_masks(model, {k: w.abs() for k, w in spec_weights(model, spec).items()}, spec)


def aimp_schedule(sparsity: float, rounds: int, rate: float | None = None) -> list[float]:
    """Sparsity after each round: a constant per-round pruning rate, 1 - (1-s)^(1/R), or ``rate``
    itself for as many rounds as it takes (the last round stops at ``sparsity``)."""
    if rate is not None:
        rounds = max(1, math.ceil(math.log(1 - sparsity) / math.log(1 - rate) - 1e-9))
        return [min(sparsity, 1 - (1 - rate) ** r) for r in range(1, rounds + 1)]
    return [1 - (1 - sparsity) ** (r / rounds) for r in range(1, rounds + 1)]


def aimp(
    model: nn.Module,
    spec: MaskSpec,
    rounds: int,
    rewind: bool,
    train_round: Callable[[nn.Module, Mask | None, int], None],
    masks: Mask | None = None,
    rate: float | None = None,
) -> Mask:
    """Adversarial IMP: for each round, ``train_round(model, masks, r)`` (adversarially, masks held
    fixed), prune the smallest trained magnitudes among survivors to the round's sparsity, and rewind
    survivors to the starting weights if ``rewind``. Leaves ``model`` as the masked ticket.

    Starting ``masks`` (an earlier ticket's) continue IMP from that ticket: the schedule then runs
    from its sparsity to ``spec.sparsity``. N:M masks have one fixed sparsity, so that pattern takes
    a single round.
    """
    start = copy.deepcopy(model.state_dict()) if rewind else None
    if spec.pattern == "nm":
        schedule = [spec.sparsity]
    else:
        kept = 1 - (Mask(masks).sparsity if masks else 0.0)
        if 1 - spec.sparsity > kept:
            raise ValueError(f"A-IMP target sparsity {spec.sparsity} is below the incoming ticket's {1 - kept:.4f}")
        schedule = [1 - kept * (1 - s) for s in aimp_schedule(1 - (1 - spec.sparsity) / kept, rounds, rate)]
    for r, s in enumerate(schedule):
        train_round(model, masks, r)
        weights = spec_weights(model, spec)
        scores = {k: w.detach().abs() * (masks[k] if masks else 1) for k, w in weights.items()}
        masks = draw_masks(model, scores, spec.model_copy(update={"sparsity": s}))
        if start is not None:
            model.load_state_dict(start)
        apply_masks(model, masks)
    return masks


# ----------------------------------------------------------------------------- LMP
class ScoredMask(nn.Module):
    """Parametrization w -> w * m with m the current top-k mask of the ranked scores (``scores`` or
    ``|scores|``) and a straight-through gradient dL/d(ranked) = dL/dm.

    ``mask`` is recomputed before every forward of the root model (all layers at once, so global
    ranking and every pattern work) by :func:`attach_scores`.
    """

    def __init__(self, weight: torch.Tensor, init: str, absolute: bool = False):
        super().__init__()
        self.absolute = absolute
        if init == "magnitude":
            scores = weight.detach().abs().clone()
        else:
            scores = torch.empty_like(weight)
            nn.init.kaiming_uniform_(scores, a=math.sqrt(5))
        self.scores = nn.Parameter(scores)
        self.register_buffer("mask", torch.ones_like(weight), persistent=False)

    @property
    def ranked(self) -> torch.Tensor:
        return self.scores.abs() if self.absolute else self.scores

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        ranked = self.ranked
        return weight * (self.mask + ranked - ranked.detach())


class LmpHandle:
    """The scores attached to a model; :meth:`masks` reads the learned mask, :meth:`detach` restores the model."""

    def __init__(self, model: nn.Module, spec: MaskSpec, scored: dict[str, tuple[nn.Module, ScoredMask]]):
        self.model, self.spec, self.scored = model, spec, scored
        self.hook = model.register_forward_pre_hook(lambda *_: self.refresh())
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        masks = self.masks()
        for k, (_, p) in self.scored.items():
            p.mask.copy_(masks[k])

    def masks(self) -> Mask:
        return draw_masks(self.model, {k: p.ranked for k, (_, p) in self.scored.items()}, self.spec)

    def detach(self) -> Mask:
        """Remove the parametrizations (weights back to theta_pre, unmasked) and return the final masks."""
        masks = self.masks()
        self.hook.remove()
        for module, _ in self.scored.values():
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        return masks


def attach_scores(model: nn.Module, spec: MaskSpec, init: str = "magnitude", rank: str = "signed") -> LmpHandle:
    """Freeze every prunable weight and give it learnable scores (the only trainable part besides
    whatever the caller unfreezes, e.g. a new head). Follower masks (the channel pattern's BatchNorm,
    the heads patterns' biases and output-projection columns) are applied only when the ticket is finalised."""
    weights = spec_weights(model, spec)
    modules = dict(model.named_modules())
    scored = {}
    for name, w in weights.items():
        module = modules[name.rsplit(".", 1)[0]] if "." in name else model
        w.requires_grad_(False)
        p = ScoredMask(w, init, absolute=rank == "abs")
        parametrize.register_parametrization(module, "weight", p)
        scored[name] = (module, p)
    return LmpHandle(model, spec, scored)


def lmp(model: nn.Module, spec: MaskSpec, init: str, train: Callable[[nn.Module], None], rank: str = "signed") -> Mask:
    """Learn a mask on frozen weights with ``train(model)`` (scores and head trainable), then apply it."""
    handle = attach_scores(model, spec, init, rank)
    train(model)
    masks = handle.detach()
    apply_masks(model, masks)
    return masks
