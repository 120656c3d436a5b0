"""Quantizers with straight-through estimators (TernaryBERT / Kim et al. 2022), hand-written.

No library ships TWN ternarization with TernaryBERT's clipped STE, so it lives here:

* ``twn``: Ternary Weight Networks. ``Δ = 0.7·mean|w|``, ``α = mean(|w_i| : |w_i| > Δ)``,
  ``ŵ = α·sign(w)·[|w| > Δ]``; one (Δ, α) per tensor (layer-wise) or per row (row-wise, used for
  the word embedding).
* ``uniform``: symmetric uniform k-bit, ``s = max|w| / (2^(k-1) - 1)``, ``ŵ = s·round(w/s)``.
* activations: symmetric uniform k-bit with a dynamic per-tensor max, after clipping to ±clip.

Every quantizer first clips to ±clip; ``q(w).detach() + (w - w.detach())`` on the clipped tensor gives the
STE of the reference code: gradient 1 inside (−clip, clip), 0 outside (clamp's own gradient).
A quantizer returns integer *codes* and *scales* so that export can pack exactly what training saw.
Codes and activation levels are computed in fp32 even under bf16/fp16 autocast (``full_precision``),
so mixed precision gives the same codes as fp32 on the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...engine.precision import full_precision

Scheme = Literal["twn", "uniform"]


@dataclass(frozen=True)
class WeightSpec:
    """How one weight tensor is quantized."""

    scheme: Scheme = "twn"
    bits: int = 2
    rowwise: bool = False
    clip: float = 2.5

    def __post_init__(self) -> None:
        if self.scheme not in ("twn", "uniform"):
            raise ValueError(f"weight scheme {self.scheme!r} is not one of 'twn', 'uniform'")
        if self.scheme == "twn" and self.bits != 2:
            raise ValueError(f"twn (ternary) weights use 2 bits, got bits={self.bits}")
        if self.bits not in (2, 4, 8):
            raise ValueError(f"weight bits must be 2, 4 or 8, got {self.bits}")


@dataclass(frozen=True)
class ActSpec:
    """Activation quantizer: symmetric ``bits``-bit, dynamic per-tensor max, clipped to ±clip."""

    bits: int = 8
    clip: float = 2.5


def _reduce_dims(w: torch.Tensor, rowwise: bool) -> tuple[int, ...] | None:
    return (-1,) if rowwise and w.dim() > 1 else None  # one scale per row (last dim)


def _mean(x: torch.Tensor, dims: tuple[int, ...] | None) -> torch.Tensor:
    return x.mean() if dims is None else x.mean(dim=dims, keepdim=True)


def _sum(x: torch.Tensor, dims: tuple[int, ...] | None) -> torch.Tensor:
    return x.sum() if dims is None else x.sum(dim=dims, keepdim=True)


@full_precision
def twn_codes(w: torch.Tensor, rowwise: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Ternary codes in {-1, 0, 1} and scale α (scalar, or one per row with ``rowwise``)."""
    dims = _reduce_dims(w, rowwise)
    absw = w.abs()
    delta = 0.7 * _mean(absw, dims)
    kept = (absw > delta).to(w.dtype)
    alpha = _sum(absw * kept, dims) / _sum(kept, dims).clamp_min(1.0)
    return (torch.sign(w) * kept).to(torch.int8), alpha


@full_precision
def uniform_codes(w: torch.Tensor, bits: int, rowwise: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric uniform codes in [-(2^(b-1)-1), 2^(b-1)-1] and step size s (scalar or per row)."""
    dims = _reduce_dims(w, rowwise)
    qmax = 2 ** (bits - 1) - 1
    peak = w.abs().amax() if dims is None else w.abs().amax(dim=dims, keepdim=True)
    step = peak.clamp_min(1e-8) / qmax
    return torch.round(w / step).clamp(-qmax, qmax).to(torch.int8), step


def weight_codes(w: torch.Tensor, spec: WeightSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes and scales of the clipped weight, as training sees it and export stores it."""
    w = w.detach().clamp(-spec.clip, spec.clip)
    if spec.scheme == "twn":
        return twn_codes(w, spec.rowwise)
    return uniform_codes(w, spec.bits, spec.rowwise)


def _straight_through(clipped: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    """Forward value exactly ``quantized`` (the zero term adds nothing), gradient that of ``clipped``."""
    return quantized.detach() + (clipped - clipped.detach())


def fake_quant_weight(w: torch.Tensor, spec: WeightSpec) -> torch.Tensor:
    """Quantize-dequantize ``w`` in the forward pass; clipped STE in the backward pass."""
    codes, scale = weight_codes(w, spec)
    return _straight_through(w.clamp(-spec.clip, spec.clip), (codes.to(w.dtype) * scale).to(w.dtype))


@full_precision
def act_codes(x: torch.Tensor, spec: ActSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer-valued activation codes ``round(clip(x)·s)`` (as floats) and ``s = qmax/max|clip(x)|``.

    The one per-tensor activation quantizer: training fake-quantizes with it and the integer
    backends (:mod:`.integer`) multiply its codes, so both see the same numbers. Computed in three
    passes: ``max|clip(x)| = min(max|x|, clip)``, and clamping ``round(x·s)`` to ±qmax equals
    rounding ``clip(x)·s`` (rounding is monotone, and ``round(clip·s) = qmax`` once anything is clipped).
    """
    x = x.detach()
    qmax = 2 ** (spec.bits - 1) - 1
    lo, hi = torch.aminmax(x)
    scale = qmax / torch.maximum(-lo, hi).clamp(max=spec.clip).clamp_min(1e-8)
    return torch.mul(x, scale).round_().clamp_(-qmax, qmax), scale


def fake_quant_act(x: torch.Tensor, spec: ActSpec) -> torch.Tensor:
    """TernaryBERT activation quantizer: clip to ±clip, then ``round(x·s)/s`` with ``s = qmax/max|x|``."""
    codes, scale = act_codes(x, spec)
    if not (x.requires_grad and torch.is_grad_enabled()):  # inference: the STE term is an exact zero
        return codes.div_(scale).to(x.dtype)
    return _straight_through(x.clamp(-spec.clip, spec.clip), (codes / scale).to(x.dtype))


class QuantLinear(nn.Linear):
    """``nn.Linear`` whose input (8-bit) and weight (ternary/k-bit) are fake-quantized.

    ``weight_spec=None`` means the stored weight is already quantized (a loaded packed model) and is
    used as is; ``bias_bits`` optionally quantizes the bias (uniform, layer-wise).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_spec: WeightSpec | None,
        act_spec: ActSpec | None,
        bias_bits: int | None = None,
    ):
        super().__init__(in_features, out_features, bias=bias)
        self.weight_spec, self.act_spec, self.bias_bits = weight_spec, act_spec, bias_bits

    @classmethod
    def from_linear(cls, linear: nn.Linear, **specs) -> "QuantLinear":
        """Wrap an existing layer, sharing (not copying) its parameters."""
        with torch.device("meta"):
            new = cls(linear.in_features, linear.out_features, linear.bias is not None, **specs)
        new.weight = linear.weight
        new.bias = linear.bias
        return new

    def param_specs(self) -> dict[str, WeightSpec]:
        specs = {"weight": self.weight_spec}
        if self.bias is not None and self.bias_bits is not None:
            specs["bias"] = affine_spec(self.bias_bits)
        return {k: v for k, v in specs.items() if v is not None}

    def freeze(self) -> None:
        _freeze(self)
        self.weight_spec = self.bias_bits = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_spec is not None:
            x = fake_quant_act(x, self.act_spec)
        return F.linear(x, *_quantized(self, ("weight", "bias")))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weight={self.weight_spec}, act={self.act_spec}, bias_bits={self.bias_bits}"


class QuantEmbedding(nn.Embedding):
    """``nn.Embedding`` with a fake-quantized table (row-wise TWN for the word embedding)."""

    weight_spec: WeightSpec | None = None

    @classmethod
    def from_embedding(cls, emb: nn.Embedding, weight_spec: WeightSpec | None) -> "QuantEmbedding":
        new = cls(emb.num_embeddings, emb.embedding_dim, padding_idx=emb.padding_idx, _weight=emb.weight)
        new.weight = emb.weight
        new.weight_spec = weight_spec
        return new

    def param_specs(self) -> dict[str, WeightSpec]:
        return {} if self.weight_spec is None else {"weight": self.weight_spec}

    def freeze(self) -> None:
        _freeze(self)
        self.weight_spec = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        spec = self.weight_spec
        if spec is not None and spec.rowwise:  # row-wise scales: quantizing only the looked-up rows is exact
            return fake_quant_weight(F.embedding(ids, self.weight, self.padding_idx), spec)
        return F.embedding(ids, *_quantized(self, ("weight",)), self.padding_idx)


class QuantLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` with uniform k-bit fake-quantized affine parameters (off by default)."""

    bits: int | None = None

    @classmethod
    def from_layernorm(cls, ln: nn.LayerNorm, bits: int | None) -> "QuantLayerNorm":
        new = cls(ln.normalized_shape, eps=ln.eps, elementwise_affine=True, device="meta")
        new.weight, new.bias, new.bits = ln.weight, ln.bias, bits
        return new

    def param_specs(self) -> dict[str, WeightSpec]:
        if self.bits is None:
            return {}
        return {name: affine_spec(self.bits) for name in ("weight", "bias") if getattr(self, name) is not None}

    def freeze(self) -> None:
        _freeze(self)
        self.bits = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, *_quantized(self, ("weight", "bias")), self.eps)


def affine_spec(bits: int) -> WeightSpec:
    """Biases and LayerNorm parameters (when quantized): uniform, layer-wise, no clipping."""
    return WeightSpec("uniform", bits, clip=float("inf"))


def _quantized(module: nn.Module, names: tuple[str, ...]) -> list[torch.Tensor | None]:
    specs = module.param_specs()
    return [fake_quant_weight(getattr(module, n), specs[n]) if n in specs else getattr(module, n) for n in names]


@torch.no_grad()
def _freeze(module: nn.Module) -> None:
    for name, tensor in zip(module.param_specs(), _quantized(module, tuple(module.param_specs()))):
        getattr(module, name).copy_(tensor)
