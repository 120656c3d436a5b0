"""Integer inference for the packed student: 8-bit activation codes × ternary/k-bit weight codes.

A quantized Linear of the student computes ``y = (α/s) · Σ_k c_k·w_k + b``, where ``c = round(clip(x)·s)``
are the 8-bit activation codes of the training quantizer (:func:`.quant.act_codes`, per tensor),
``w`` the stored weight codes and ``α`` their scale. :class:`IntegerLinear` computes exactly that,
with one of three kernels:

* ``onednn``: oneDNN's u8×s8 GEMM with an fp32 epilogue (``torch.ops.onednn.qlinear_pointwise``,
  the op torch's own x86 int8 inference lowers to). The codes shift to ``c + 128`` (uint8, zero point
  128), the int32 sums are exact, then one fp32 rescale and the bias. On a CPU without VNNI/AMX
  oneDNN multiplies with ``vpmaddubsw``, which saturates pairs of products at int16: harmless for
  weight codes of up to 4 bits (|pair| ≤ 2·255·7), wrong for 8-bit weights, which then take
  ``int_mm``.
* ``int_mm``: ``torch._int_mm`` (int8×int8 → int32, exact); rows padded to ≥ 17 and multiples of 8,
  the reduction and output dims to multiples of 8, as it requires.
* ``bf16``: the codes are exact in bf16, but torch's bf16 matmul returns its result rounded to bf16
  (8 significant bits), so this kernel is **approximate**: it agrees with the fake-quant student on
  ≥ 99.5 % of predictions (tested), not on all.

``auto`` picks ``int8`` where this CPU has an int8 GEMM faster than its fp32 one: x86 with AVX2
(oneDNN's u8s8 kernels; AVX512-VNNI/AMX make them faster still), measured on an AVX2-only EPYC at
about 2× the fp32 matmul for the GEMM alone; elsewhere ``reference`` (the dequantized fp32 path).
The Q·Kᵀ and probabilities·V products stay fake-quantized fp32: at 64 tokens they are ~4 % of a
layer's multiply-adds, and oneDNN's int8 op takes a 2-D weight, not a batch of them.

Hand-written because no library runs a per-tensor symmetric quantizer with clipping followed by
ternary weight codes; the GEMMs themselves are oneDNN's / torch's.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...engine.precision import cpu_flags
from .quant import ActSpec, act_codes

Backend = Literal["reference", "int8", "bf16", "auto"]
BACKENDS: tuple[str, ...] = ("reference", "int8", "bf16", "auto")
ZERO_POINT = 128


@functools.lru_cache(maxsize=None)
def cpu_int8_units() -> tuple[str, ...]:
    """The CPU's int8 dot-product features (``amx_int8``, ``avx512_vnni``, ``avx_vnni``) and ``avx2``."""
    return tuple(f for f in ("amx_int8", "avx512_vnni", "avx_vnni", "avx2") if f in cpu_flags())


def has_onednn_int8() -> bool:
    return hasattr(torch.ops.onednn, "qlinear_pointwise") and torch.backends.mkldnn.is_available()


def resolve_backend(requested: str = "auto") -> tuple[str, str]:
    """``(backend, reason)``: ``auto`` becomes ``int8`` on an x86 CPU with AVX2 and oneDNN, else ``reference``."""
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if requested != "auto":
        return requested, "requested"
    units = cpu_int8_units()
    if units and has_onednn_int8():
        return "int8", f"auto: oneDNN int8 GEMM on a CPU with {'/'.join(units)}"
    return "reference", "auto: no fast int8 GEMM known here (needs x86 AVX2+ with oneDNN)"


def exact_onednn(bits: int) -> bool:
    """oneDNN's int32 sums are exact for ≤ 4-bit weights, and for any with VNNI/AMX (no int16 step)."""
    return has_onednn_int8() and (bits <= 4 or any(u != "avx2" for u in cpu_int8_units()))


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def shifted_act_codes(x: torch.Tensor, spec: ActSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The codes of :func:`.quant.act_codes` plus 128, as uint8 (oneDNN's u8 input with zero point 128)."""
    codes, scale = act_codes(x, spec)
    return codes.add_(ZERO_POINT).to(torch.uint8), scale


def share_quantization(linears: list[IntegerLinear]) -> None:
    """Let Linears that read the same tensor (an attention's query/key/value) quantize it once."""
    shared: list = [None, None]
    for linear in linears:
        linear.shared = shared


class _MatMulInteger(torch.autograd.Function):
    """``(u8 - 128) @ w`` in int32; exported to ONNX as ``MatMulInteger`` (u8 × s8, zero point 128)."""

    @staticmethod
    def forward(ctx, xu8: torch.Tensor, w_kn: torch.Tensor) -> torch.Tensor:
        return (xu8.to(torch.int32) - ZERO_POINT) @ w_kn.to(torch.int32)

    @staticmethod
    def symbolic(g, xu8, w_kn):
        zp = g.op("Constant", value_t=torch.tensor(ZERO_POINT, dtype=torch.uint8))
        return g.op("MatMulInteger", xu8, w_kn, zp)


class IntegerLinear(nn.Module):
    """A frozen quantized Linear that multiplies integer codes (see the module docstring)."""

    def __init__(
        self,
        codes: torch.Tensor,
        scale: torch.Tensor,
        bias: torch.Tensor | None,
        act: ActSpec,
        bits: int,
        kernel: Literal["onednn", "int_mm", "bf16"],
    ):
        super().__init__()
        self.out_features, self.in_features = codes.shape
        self.act, self.bits, self.kernel = act, bits, kernel
        self.shared: list | None = None  # [input, codes] of the last call, set by share_quantization()
        self.register_buffer("codes", codes.to(torch.int8).contiguous())
        self.register_buffer("weight_scale", scale.float().reshape(-1).contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().float().contiguous())
        self._packed = torch.ops.onednn.qlinear_prepack(self.codes, None) if kernel == "onednn" else None
        if kernel == "int_mm":
            k, n = _round_up(self.in_features, 8), _round_up(self.out_features, 8)
            self.register_buffer(
                "_codes_kn",
                F.pad(self.codes, (0, k - self.in_features, 0, n - self.out_features)).t().contiguous(),
                persistent=False,
            )
        if kernel == "bf16":
            self.register_buffer("_codes_bf16", self.codes.to(torch.bfloat16), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_features)
        if torch.onnx.is_in_onnx_export():
            q, s = act_codes(x, self.act)
            acc = _MatMulInteger.apply((q + ZERO_POINT).to(torch.uint8), self.codes.t()).float()
            y = self._rescale(acc, s)
        else:
            xu8, s = self.codes_of(x)
            if self.kernel == "onednn":
                y = torch.ops.onednn.qlinear_pointwise(
                    xu8,
                    float(1 / s),
                    ZERO_POINT,
                    self._packed,
                    self.weight_scale,
                    _zero_points(self.weight_scale.numel()),
                    self.bias,
                    1.0,
                    0,
                    torch.float32,
                    "none",
                    [],
                    "",
                )
            elif self.kernel == "int_mm":
                y = self._rescale(self._int_mm(xu8), s)
            else:
                y = self._rescale(F.linear((xu8.to(torch.bfloat16) - ZERO_POINT), self._codes_bf16).float(), s)
        return y.reshape(*lead, self.out_features)

    def codes_of(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``c + 128`` as uint8 and ``s``; Linears reading the same input (Q/K/V) share one quantization."""
        shared = self.shared
        if shared is not None and shared[0] is x:
            return shared[1]
        codes = shifted_act_codes(x, self.act)
        if shared is not None:
            shared[:] = [x, codes]
        return codes

    def _rescale(self, acc: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        y = acc * (self.weight_scale / s)
        return y if self.bias is None else y + self.bias

    def _int_mm(self, xu8: torch.Tensor) -> torch.Tensor:
        rows = xu8.shape[0]
        padded = F.pad(
            (xu8.to(torch.int16) - ZERO_POINT).to(torch.int8),
            (0, self._codes_kn.shape[0] - self.in_features, 0, max(_round_up(rows, 8), 24) - rows),
        )
        return torch._int_mm(padded, self._codes_kn)[:rows, : self.out_features].float()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, kernel={self.kernel}"
        )


@functools.lru_cache(maxsize=None)
def _zero_points(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.long)


def kernel_for(backend: str, bits: int) -> Literal["onednn", "int_mm", "bf16"]:
    """The GEMM kernel of a resolved backend for weights of ``bits`` bits."""
    if backend == "bf16":
        return "bf16"
    return "onednn" if exact_onednn(bits) else "int_mm"
