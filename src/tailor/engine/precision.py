"""Which arithmetic precision to run in, and a context that runs code in it.

`auto` picks bf16 only where the hardware has fast bf16 units: a CUDA device that supports bf16,
or a CPU with AMX or AVX512-BF16. Elsewhere bf16 is emulated and far slower than fp32 (measured
on an AVX2-only AMD EPYC, torch 2.13, 2 threads: a 1024² bf16 matmul runs at about 1/100 of the
fp32 rate), so `auto` stays in fp32 there. The choice carries its reason, which stages log and
record in `results.json`.

Mixed precision goes through the libraries' own paths: Trainer's `bf16`/`fp16` arguments for
training and `torch.autocast` for inference; nothing here casts tensors by hand. What must stay
exact under autocast (quantizer codes, KD/KL and masked-reconstruction losses) is marked with
`full_precision`, an fp32 island: autocast off, floating-point inputs upcast to fp32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class PrecisionChoice:
    """A resolved precision (`fp32`, `bf16` or `fp16`) and why it was chosen."""

    name: Literal["fp32", "bf16", "fp16"]
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    @property
    def mixed(self) -> bool:
        return self.name != "fp32"

    def as_dict(self) -> dict[str, str]:
        return {"precision": self.name, "reason": self.reason}


@functools.lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    """The kernel's CPU feature flags (Linux `/proc/cpuinfo`); empty off Linux.

    torch 2.13 exposes no public query for bf16 or int8 dot-product units (its
    `get_cpu_capability()` tops out at "AVX512"), so the engine and the integer backends read these.
    """
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_bf16_units() -> str | None:
    """The CPU's fast bf16 feature (`amx_bf16` or `avx512_bf16`), or None when it has neither
    (then, and off Linux, `auto` stays in fp32)."""
    return next((f for f in ("amx_bf16", "avx512_bf16") if f in cpu_flags()), None)


def resolve(requested: str = "auto", device: torch.device | str | None = None) -> PrecisionChoice:
    """Turn a requested precision into the one to run, on `device` (default: CUDA if present, else CPU)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if requested != "auto":
        if requested == "fp16" and kind == "cpu":
            return PrecisionChoice("fp16", "requested (fp16 on a CPU is emulated and usually slower than fp32)")
        return PrecisionChoice(requested, "requested")
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", f"auto: {torch.cuda.get_device_name()} supports bf16")
        return PrecisionChoice("fp16", f"auto: {torch.cuda.get_device_name()} has no bf16; fp16 with loss scaling")
    if kind == "cpu":
        units = cpu_bf16_units()
        if units:
            return PrecisionChoice("bf16", f"auto: the CPU has {units}")
        return PrecisionChoice("fp32", "auto: the CPU has neither AMX nor AVX512-BF16, so bf16 would be emulated")
    return PrecisionChoice("fp32", f"auto: no fast mixed precision known for device type {kind!r}")


def autocast(choice: PrecisionChoice, device: torch.device | str) -> contextlib.AbstractContextManager:
    """`torch.autocast` in the chosen precision on `device`, or a no-op context for fp32."""
    if not choice.mixed:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=choice.dtype)


def resolve_logged(requested: str, what: str, device: torch.device | str | None = None) -> PrecisionChoice:
    """`resolve`, logging the choice and its reason for `what` (a stage, "evaluation", "predict")."""
    choice = resolve(requested, device)
    log.info("%s precision: %s (%s)", what, choice.name, choice.reason)
    return choice


def _upcast(value):
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_upcast(v) for v in value)
    return value


def full_precision(fn):
    """Decorator: run `fn` in fp32 even inside autocast (an fp32 island).

    Autocast is switched off for the device types torch autocasts (CPU and, when present, CUDA) and
    every floating-point tensor argument (also inside list/tuple arguments) is upcast to fp32. In an
    fp32 run this changes nothing: `.float()` of an fp32 tensor is the tensor itself.
    """
    devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            for kind in devices:
                stack.enter_context(torch.autocast(kind, enabled=False))
            return fn(*_upcast(args), **{k: _upcast(v) for k, v in kwargs.items()})

    return wrapper
