"""Adversarial attacks in [0, 1] pixel space: PGD (l_inf, l_2; Madry et al. 2018) and FGSM.

Hand-written because no library usable here (torchattacks is test-only) plugs into the engine's
Objective and into Hugging Face models that return ``ModelOutput``. Epsilon is in pixel units:
inputs are [0, 1] images and the model sees them through :class:`PixelSpace`, which applies the
data pipeline's normalisation inside the graph, so gradients and the epsilon-ball live in pixel
space whatever the model's preprocessing is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from .config import AttackConfig


class PixelSpace(nn.Module):
    """Wraps a classifier so it takes [0, 1] images and returns logits.

    ``mean``/``std`` are the per-channel normalisation the model was trained with (identity when
    both are None). The wrapped model may return a tensor or a ``ModelOutput`` with ``logits``.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        super().__init__()
        self.model = model
        self.register_buffer("mean", _channel_tensor(mean, 0.0), persistent=False)
        self.register_buffer("std", _channel_tensor(std, 1.0), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`: model inputs back to [0, 1] pixels."""
        return x * self.std + self.mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=self.normalize(x))
        return out if isinstance(out, torch.Tensor) else out.logits


def _channel_tensor(values: Sequence[float] | None, default: float) -> torch.Tensor:
    t = torch.tensor([default] if values is None else list(values), dtype=torch.float32)
    return t.view(1, -1, 1, 1)


def _ce_input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d CE(model(x), y) / dx, without touching parameter gradients."""
    x = x.detach().requires_grad_(True)  # fp32 leaf: the gradient, its sign and the projection stay fp32
    loss = nn.functional.cross_entropy(model(x).float(), y)  # under autocast, CE of the upcast logits
    return torch.autograd.grad(loss, x)[0]


def _l2_normalize(t: torch.Tensor) -> torch.Tensor:
    norms = t.flatten(1).norm(dim=1).clamp_min(1e-12)
    return t / norms.view(-1, *([1] * (t.dim() - 1)))


def _project(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Euclidean projection of each sample's perturbation onto its epsilon-ball."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (eps / norms).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))


def _random_start(x: torch.Tensor, norm: str, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform in the l_inf cube; for l_2 uniform in the ball (direction ~ Gaussian, radius ~ eps*U^(1/d))."""
    if norm == "linf":
        return (torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1).to(x.device) * eps
    direction = _l2_normalize(torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device))
    d = x[0].numel()
    radius = eps * torch.rand(x.shape[0], generator=generator, dtype=x.dtype).to(x.device) ** (1.0 / d)
    return direction * radius.view(-1, *([1] * (x.dim() - 1)))


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str = "linf",
    eps: float = 8 / 255,
    alpha: float = 2 / 255,
    steps: int = 10,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Untargeted PGD on cross-entropy: x_{t+1} = clip_[0,1](x + P_eps(x_t + alpha * s(grad) - x)).

    ``s`` is sign(.) for l_inf and grad/||grad||_2 for l_2. ``model`` maps [0, 1] images to logits
    (wrap with :class:`PixelSpace`). Returns detached adversarial images. The caller picks train or
    eval mode (Madry et al. attack in train mode during adversarial training).
    """
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    x = x.detach()
    delta = _random_start(x, norm, eps, generator) if random_start else torch.zeros_like(x)
    adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        grad = _ce_input_grad(model, adv, y)
        step = grad.sign() if norm == "linf" else _l2_normalize(grad)
        adv = (x + _project(adv + alpha * step - x, norm, eps)).clamp(0, 1)
    return adv.detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float = 8 / 255) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one l_inf step of size eps."""
    grad = _ce_input_grad(model, x, y)
    return (x.detach() + eps * grad.sign()).clamp(0, 1).detach()


def attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: AttackConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Run the attack ``cfg`` describes (``cfg.kind`` is 'pgd' or 'fgsm')."""
    if cfg.kind == "fgsm":
        return fgsm(model, x, y, eps=cfg.eps)
    return pgd(
        model,
        x,
        y,
        norm=cfg.norm,
        eps=cfg.eps,
        alpha=cfg.alpha,
        steps=cfg.steps,
        random_start=cfg.random_start,
        generator=generator,
    )


@torch.no_grad()
def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (model(x).argmax(-1) == y).sum()


def robust_accuracy(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], cfg: AttackConfig | None, seed: int = 0
) -> dict[str, float]:
    """Clean and (if ``cfg``) adversarial accuracy of a [0, 1]-input model over (x, y) batches.

    The model is put in eval mode; attacks are seeded so the number is reproducible.
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    clean = adv = n = 0
    for x, y in batches:
        clean += int(_correct(model, x, y))
        if cfg is not None:
            adv += int(_correct(model, attack(model, x, y, cfg, gen), y))
        n += len(y)
    model.train(was_training)
    out = {"accuracy": clean / max(n, 1)}
    if cfg is not None:
        out["robust_accuracy"] = adv / max(n, 1)
    return out
