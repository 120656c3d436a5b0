"""A fake-quantized attention function plugged into stock transformers encoders.

``transformers.AttentionInterface.register("kdqat", kdqat_attention)`` lets BERT/RoBERTa/ViT run this
function instead of ``eager_attention_forward`` (same signature, transformers 5.18), so no model
code is copied. It differs from eager attention in two ways:

* with ``module.kdqat_act`` set (an :class:`ActSpec`), Q and K are 8-bit fake-quantized before
  ``QKᵀ``, and the attention probabilities (after dropout) and V before ``AM·V`` (TernaryBERT);
* it passes the masked, scaled scores ``QKᵀ/√d_h + mask`` and the pre-dropout, pre-quantization
  probabilities through two identity probes (``module.kdqat_scores``/``module.kdqat_probs``), so
  ``tailor.engine.hooks.capture`` records them with ordinary forward hooks. The probes have no
  parameters, so the teacher gets them too and its state dict does not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, eager_mask

from .quant import ActSpec, fake_quant_act

IMPLEMENTATION = "kdqat"
SCORES_PROBE = "kdqat_scores"
PROBS_PROBE = "kdqat_probs"


def kdqat_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention with optional 8-bit Q/K/V/probability fake quantization and probes."""
    act: ActSpec | None = getattr(module, "kdqat_act", None)
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    if act is not None:
        query, key, value = fake_quant_act(query, act), fake_quant_act(key, act), fake_quant_act(value, act)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    scores = _probe(module, SCORES_PROBE, scores)
    probs = _probe(module, PROBS_PROBE, nn.functional.softmax(scores, dim=-1))
    weights = nn.functional.dropout(probs, p=dropout, training=module.training)
    if act is not None:
        weights = fake_quant_act(weights, act)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, probs


def _probe(module: nn.Module, name: str, tensor: torch.Tensor) -> torch.Tensor:
    probe = getattr(module, name, None)
    return tensor if probe is None else probe(tensor)


def register() -> None:
    """Make ``attn_implementation="kdqat"`` known to transformers (idempotent)."""
    AttentionInterface.register(IMPLEMENTATION, kdqat_attention)
    if IMPLEMENTATION not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)


@dataclass(frozen=True)
class LayerPaths:
    """Module paths of one encoder layer that the KD terms read."""

    self_attention: str
    attention_output: str  # Y_l = LN(X_l + MHA(X_l)) for post-LN models; LN_after(X_l + MHA) for ViT

    @property
    def scores(self) -> str:
        return f"{self.self_attention}.{SCORES_PROBE}"

    @property
    def probs(self) -> str:
        return f"{self.self_attention}.{PROBS_PROBE}"


PROJECTION_NAMES = (("query", "key", "value"), ("q_proj", "k_proj", "v_proj"))


def self_attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Self-attention modules (query/key/value or q_proj/k_proj/v_proj linears), by path, in order."""
    found = {
        name: m
        for name, m in model.named_modules()
        if any(all(isinstance(getattr(m, p, None), nn.Linear) for p in names) for names in PROJECTION_NAMES)
    }
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no self-attention module with query/key/value "
            "(or q_proj/k_proj/v_proj) linears; kdqat supports BERT/RoBERTa/ViT-style encoders"
        )
    return found


def layer_paths(model: nn.Module) -> list[LayerPaths]:
    """Per-layer paths for BERT/RoBERTa (post-LN ``attention.output``) and ViT (``layernorm_after``)."""
    modules = dict(model.named_modules())
    paths = []
    for attn_path in self_attention_modules(model):
        parent = attn_path.rsplit(".", 1)[0]
        if hasattr(modules.get(f"{parent}.output"), "LayerNorm"):  # BERT/RoBERTa: attention.self
            paths.append(LayerPaths(attn_path, f"{parent}.output"))
        elif f"{parent}.layernorm_after" in modules:  # ViT: layer.attention, pre-LN
            paths.append(LayerPaths(attn_path, f"{parent}.layernorm_after"))
        else:
            raise ValueError(f"cannot locate the attention output (after residual and LayerNorm) of {parent!r}")
    return paths


def use_kdqat_attention(model: nn.Module, act: ActSpec | None = None) -> nn.Module:
    """Switch ``model`` to the kdqat attention function, add probes, and set the Q/K/V/prob quantizer."""
    register()
    for module in self_attention_modules(model).values():
        module.kdqat_act = act
        for name in (SCORES_PROBE, PROBS_PROBE):
            if not hasattr(module, name):
                module.add_module(name, nn.Identity())
    model.set_attn_implementation(IMPLEMENTATION)
    return model


def ensure_kdqat_attention(model: nn.Module) -> nn.Module:
    """Probes for a model not yet on kdqat attention (full precision); a quantized student is kept as is."""
    if getattr(model.config, "_attn_implementation", None) != IMPLEMENTATION:
        use_kdqat_attention(model)
    return model
