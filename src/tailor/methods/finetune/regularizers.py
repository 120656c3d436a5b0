"""Fine-tuning regularisers (the self-distillation paper's baselines, Tables 1-2) that wrap the ``finetune`` stage.

* ``L2ToPretrained``: an Objective wrapper adding coef·Σ||θ − θ_init||² over the encoder (the penalty
  RecAdam optimises, Chen et al. 2020). RecAdam additionally decouples this pull from Adam and anneals
  it with a sigmoid schedule; we use the plain coupled penalty (documented simplification).
* ``MarsProjection``: a TrainerCallback that, after each optimiser step, projects every encoder weight
  matrix into the MARS-norm ball of radius γ around its pre-trained value with Gouk et al.'s (2021)
  rescaling π(W) = U + (W − U) / max(1, ||W − U||_MARS / γ).
* ``R3F``: an Objective wrapper adding λ·(KL(p‖q) + KL(q‖p)) between the predictions on the clean
  input and on input embeddings perturbed by noise of scale ε (Aghajanyan et al., 2021).
Written by hand: none of these exists in transformers/peft/accelerate.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainerCallback

from ...engine.losses import mars_norm, weight_l2


def pretrained_reference(model: nn.Module, min_dim: int = 1) -> dict[str, torch.Tensor]:
    """Detached copy of the encoder's (``model.base_model``) parameters: θ_init for the regularisers."""
    return {n: p.detach().clone() for n, p in model.base_model.named_parameters() if p.dim() >= min_dim}


class L2ToPretrained:
    """Objective wrapper: the inner terms plus ``l2_to_pretrained`` = Σ||θ − θ_init||²₂ (weight ``coef``)."""

    def __init__(self, inner, reference: dict[str, torch.Tensor], coef: float):
        self.inner, self.reference = inner, reference
        self.weights = {**inner.weights, "l2_to_pretrained": coef}

    def terms(self, model: nn.Module, batch, teacher=None) -> dict[str, torch.Tensor]:
        terms = self.inner.terms(model, batch, teacher)
        terms["l2_to_pretrained"] = weight_l2(model.base_model.named_parameters(), self.reference)
        return terms


@torch.no_grad()
def mars_project_(named_params, reference: dict[str, torch.Tensor], radius: float) -> None:
    """In place: W ← U + (W − U) / max(1, ||W − U||_MARS / radius) for every weight ``reference`` names."""
    for name, param in named_params:
        if name in reference:
            delta = param - reference[name]
            param.copy_(reference[name] + delta / torch.clamp(mars_norm(delta) / radius, min=1.0))


class MarsProjection(TrainerCallback):
    """Re-applies the MARS projection after every optimiser step (the encoder's ≥2-D weights only)."""

    def __init__(self, model: nn.Module, radius: float):
        if radius <= 0:
            raise ValueError(f"MARS radius must be > 0, got {radius}")
        self.radius = radius
        self.reference = pretrained_reference(model, min_dim=2)

    def project(self, model: nn.Module) -> None:
        mars_project_(model.base_model.named_parameters(), self.reference, self.radius)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.project(model)
        return control


def symmetric_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) + KL(q‖p), summed over classes, averaged over examples (fairseq's R3F ``symm_kl``)."""
    p_log, q_log = F.log_softmax(p_logits, dim=-1), F.log_softmax(q_logits, dim=-1)
    return ((p_log.exp() - q_log.exp()) * (p_log - q_log)).sum(dim=-1).mean()


@contextmanager
def _last_output(model: nn.Module):
    seen: list = []
    handle = model.register_forward_hook(lambda module, args, output: seen.append(output))
    try:
        yield seen
    finally:
        handle.remove()


@contextmanager
def noisy_embeddings(model: nn.Module, eps: float, noise: str):
    """Adds N(0, ε²) or U(−ε, ε) noise to the output of the model's input embedding module."""

    def perturb(module, args, output):
        if noise == "normal":
            return output + torch.randn_like(output) * eps
        return output + (torch.rand_like(output) * 2 - 1) * eps

    handle = model.get_input_embeddings().register_forward_hook(perturb)
    try:
        yield
    finally:
        handle.remove()


class R3F:
    """Objective wrapper: the inner (cross-entropy) terms plus ``r3f`` = symmetric KL(clean ‖ noisy)."""

    def __init__(self, inner, *, eps: float = 1e-5, noise: str = "uniform", coef: float = 1.0):
        if noise not in ("uniform", "normal"):
            raise ValueError(f"unknown R3F noise {noise!r}; valid: 'uniform', 'normal'")
        self.inner, self.eps, self.noise = inner, eps, noise
        self.weights = {**inner.weights, "r3f": coef}

    def terms(self, model: nn.Module, batch, teacher=None) -> dict[str, torch.Tensor]:
        with _last_output(model) as seen:
            terms = self.inner.terms(model, batch, teacher)
        if not seen:
            raise RuntimeError("R3F: the wrapped objective never called the model")
        clean = seen[-1].logits
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with noisy_embeddings(model, self.eps, self.noise):
            noisy = model(**inputs).logits
        terms["r3f"] = symmetric_kl(clean, noisy)
        return terms


def regularize(spec, model: nn.Module, objective) -> tuple[object, list[TrainerCallback]]:
    """Apply a ``FinetuneRegularizer`` config: (possibly wrapped objective, extra trainer callbacks)."""
    if spec.kind == "none":
        return objective, []
    if spec.kind == "l2_to_pretrained":
        return L2ToPretrained(objective, pretrained_reference(model), spec.coef), []
    if spec.kind == "mars":
        return objective, [MarsProjection(model, spec.radius)]
    if spec.kind == "r3f":
        return R3F(objective, eps=spec.eps, noise=spec.noise, coef=spec.coef), []
    raise ValueError(f"unknown regularizer {spec.kind!r}; valid: none, l2_to_pretrained, mars, r3f")
