"""Real compression: pack the quantized student into a safetensors file and load it back.

Each quantized parameter is stored as its integer codes packed into ``uint8`` (four 2-bit codes
per byte for ternary/2-bit, two 4-bit codes per byte, one 8-bit code per byte) plus its fp32
scale(s); every other tensor stays fp32. Packing is hand-written because safetensors has no
sub-byte dtype. The artifact folder holds ``model.safetensors`` (packed), ``config.json`` (the HF
config) and ``kdqat.json`` (quantization settings, packed shapes, which head class).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ...files import atomic_save_safetensors, atomic_write_text
from .attention import PROJECTION_NAMES, self_attention_modules
from .config import QuantConfig
from .integer import Backend, IntegerLinear, kernel_for, resolve_backend, share_quantization
from .quant import QuantLinear, WeightSpec, weight_codes
from .student import component, freeze_quantized, quantize_model, quantized_parameters

PACKED_FILE = "model.safetensors"
META_FILE = "kdqat.json"
CODES, SCALE = ".__codes__", ".__scale__"


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed codes in [-(2^(b-1)), 2^(b-1)-1] → flat ``uint8`` with ``8 // bits`` codes per byte."""
    if bits not in (2, 4, 8):
        raise ValueError(f"can pack 2, 4 or 8 bits, got {bits}")
    unsigned = (codes.flatten().to(torch.int16) + 2 ** (bits - 1)).to(torch.uint8)
    per_byte = 8 // bits
    pad = (-unsigned.numel()) % per_byte
    grouped = torch.cat([unsigned, unsigned.new_zeros(pad)]).view(-1, per_byte).to(torch.int32)
    shifts = torch.arange(per_byte, dtype=torch.int32) * bits
    return (grouped << shifts).sum(-1).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: ``int8`` codes of the given shape."""
    per_byte = 8 // bits
    shifts = torch.arange(per_byte, dtype=torch.int32) * bits
    unsigned = (packed.to(torch.int32)[:, None] >> shifts) & (2**bits - 1)
    numel = int(torch.Size(shape).numel())
    return (unsigned.flatten()[:numel] - 2 ** (bits - 1)).to(torch.int8).view(shape)


def packed_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """Tensors to write (packed codes, scales, fp32 rest) and per-parameter packing metadata."""
    specs = quantized_parameters(model)
    tensors, packing = {}, {}
    for name, value in model.state_dict().items():
        spec = specs.get(name)
        if spec is None:
            tensors[name] = value.detach().float().contiguous()
            continue
        codes, scale = weight_codes(value, spec)
        tensors[name + CODES] = pack_codes(codes, spec.bits)
        tensors[name + SCALE] = scale.float().reshape(-1).contiguous()
        packing[name] = {"bits": spec.bits, "shape": list(value.shape), "scale_shape": list(scale.shape)}
    return _dedupe_tied(tensors), packing


def _dedupe_tied(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage; tied weights are re-tied by the model on load."""
    seen, out = set(), {}
    for name, t in tensors.items():
        key = (t.data_ptr(), t.numel(), t.dtype) if t.numel() else (name,)
        if key not in seen:
            seen.add(key)
            out[name] = t
    return out


def export_packed(
    model: nn.Module, out_dir: str | Path, quant: QuantConfig, head: str = "classifier", extra_meta: dict | None = None
) -> Path:
    """Write the packed artifact folder for a fake-quantized student; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors, packing = packed_state(model)
    atomic_save_safetensors(tensors, out / PACKED_FILE, metadata={"format": "pt", "kdqat": "packed"})
    model.config.save_pretrained(out)
    meta = {
        "quant": quant.model_dump(),
        "packing": packing,
        "head": head,
        "model_class": type(model).__name__,
        **(extra_meta or {}),
    }
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=2))
    return out


def dequantized_state(folder: str | Path) -> dict[str, torch.Tensor]:
    """The packed file as a plain fp32 state dict (codes × scales)."""
    return _dequantized(_stored(Path(folder)))


def _dequantized(stored: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> dict[str, torch.Tensor]:
    return {name: codes if scale is None else codes.float() * scale for name, (codes, scale) in stored.items()}


def _stored(folder: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Each tensor of the packed file: ``(int8 codes, scale)`` for quantized ones, ``(fp32, None)`` for the rest."""
    meta = json.loads((folder / META_FILE).read_text())
    raw = load_file(folder / PACKED_FILE)
    state = {k: (v, None) for k, v in raw.items() if not (k.endswith(CODES) or k.endswith(SCALE))}
    for name, info in meta["packing"].items():
        codes = unpack_codes(raw[name + CODES], info["bits"], tuple(info["shape"]))
        state[name] = codes, raw[name + SCALE].view(info["scale_shape"])
    return state


def load_packed(
    folder: str | Path, model_class: type[nn.Module] | None = None, *, backend: Backend = "reference"
) -> nn.Module:
    """Rebuild an inference model (quantized weights frozen, 8-bit activations) from a packed folder.

    ``backend="reference"`` computes with the dequantized fp32 weights, exactly like the
    fake-quant student; ``"int8"``/``"bf16"`` swap each activation-quantized Linear for an
    :class:`~.integer.IntegerLinear` multiplying integer codes (``"bf16"`` is approximate);
    ``"auto"`` picks from the hardware (:func:`~.integer.resolve_backend`). The chosen backend and
    its reason are in ``model.kdqat_backend``.
    """
    import transformers
    from transformers import AutoConfig

    folder = Path(folder)
    meta = json.loads((folder / META_FILE).read_text())
    chosen, reason = resolve_backend(backend)
    config = AutoConfig.from_pretrained(folder)
    cls = model_class or getattr(transformers, meta["model_class"])
    model = quantize_model(cls(config), QuantConfig(**meta["quant"]))
    freeze_quantized(model)
    stored = _stored(folder)
    missing, unexpected = model.load_state_dict(_dequantized(stored), strict=False)
    untied = [k for k in missing if k not in _tied_names(model)]
    if untied or unexpected:
        raise ValueError(
            f"{folder / PACKED_FILE} does not match {cls.__name__}: missing {untied}, unexpected {unexpected}"
        )
    model.tie_weights()
    if chosen != "reference":
        _to_integer(model, stored, meta["packing"], chosen)
    model.kdqat_backend = {"backend": chosen, "reason": reason}
    return model.eval()


def _to_integer(model: nn.Module, stored: dict, packing: dict, backend: str) -> None:
    """Swap every Linear with quantized activations and weights for an :class:`IntegerLinear`."""
    attentions, swapped = self_attention_modules(model), {}
    for name, module in list(model.named_modules()):
        info = packing.get(f"{name}.weight")
        if not isinstance(module, QuantLinear) or module.act_spec is None or info is None:
            continue
        codes, scale = stored[f"{name}.weight"]
        new = IntegerLinear(codes, scale, module.bias, module.act_spec, info["bits"], kernel_for(backend, info["bits"]))
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
        swapped[name] = new
    for path, attn in attentions.items():
        projections = next(names for names in PROJECTION_NAMES if hasattr(attn, names[0]))
        share_quantization([swapped[f"{path}.{p}"] for p in projections if f"{path}.{p}" in swapped])


def _tied_names(model: nn.Module) -> set[str]:
    by_ptr: dict[int, list[str]] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        by_ptr.setdefault(t.data_ptr(), []).append(name)
    return {n for names in by_ptr.values() if len(names) > 1 for n in names}


def size_report(model: nn.Module, folder: str | Path | None = None) -> dict[str, dict[str, float]]:
    """Bytes per component in fp32 vs packed (codes + scales), and the ratio.

    Components: quantized linear weights, each embedding table, biases, LayerNorms, classifier, and
    the total; counted from the same packing the export writes, so it matches the file's payload.
    """
    specs = quantized_parameters(model)
    rows: dict[str, dict[str, float]] = {}
    for name, value in model.state_dict().items():
        spec = specs.get(name)
        key = _size_component(model, name, spec)
        fp32 = value.numel() * 4
        packed = fp32 if spec is None else _packed_bytes(value, spec)
        row = rows.setdefault(key, {"fp32_bytes": 0, "packed_bytes": 0})
        row["fp32_bytes"] += fp32
        row["packed_bytes"] += packed
    total = {k: sum(r[k] for r in rows.values()) for k in ("fp32_bytes", "packed_bytes")}
    rows["total"] = total
    for row in rows.values():
        row["ratio"] = row["fp32_bytes"] / max(row["packed_bytes"], 1)
    if folder is not None:
        rows["total"]["file_bytes"] = (Path(folder) / PACKED_FILE).stat().st_size
    return rows


def _packed_bytes(value: torch.Tensor, spec: WeightSpec) -> int:
    per_byte = 8 // spec.bits
    scales = value.shape[0] if spec.rowwise and value.dim() > 1 else 1
    return -(-value.numel() // per_byte) + 4 * scales


def _size_component(model: nn.Module, name: str, spec: WeightSpec | None) -> str:
    module_path, _, param = name.rpartition(".")
    role = component(model, module_path)
    if role in ("classifier", "word_embeddings", "position_embeddings", "token_type_embeddings"):
        return role
    if "LayerNorm" in module_path or "layernorm" in module_path.lower():
        return "layernorm"
    if param == "bias":
        return "bias"
    return "quantized_linear_weights" if spec is not None else "other_fp32"
