"""Turn any Hugging Face BERT/RoBERTa/ViT encoder into a fake-quantized QAT student, in place.

Linear layers become :class:`QuantLinear`, embeddings :class:`QuantEmbedding`, optionally LayerNorms
:class:`QuantLayerNorm`; attention goes through the registered ``kdqat`` attention function. No
model code is copied: parameters are shared with the original modules, so a student built from the
fine-tuned teacher's checkpoint starts from exactly its weights (spec §1.3).

Which part is which: the head is everything outside ``model.base_model_prefix`` (the classifier,
FP by default); the pooler is ``<base>.pooler``; ViT's patch-embedding convolution stays FP.
"""

from __future__ import annotations

from torch import nn

from .attention import use_kdqat_attention
from .config import EmbeddingMode, QuantConfig
from .quant import ActSpec, QuantEmbedding, QuantLayerNorm, QuantLinear, WeightSpec


def component(model: nn.Module, name: str) -> str:
    """Role of the module at ``name``: classifier, pooler, word/position/token_type embeddings, or body."""
    base = getattr(model, "base_model_prefix", "")
    if name and base and hasattr(model, base) and name.split(".", 1)[0] != base:
        return "classifier"
    for role in ("word_embeddings", "position_embeddings", "token_type_embeddings", "pooler"):
        if role in name.split("."):
            return role
    return "body"


def _weight_spec(cfg: QuantConfig, rowwise: bool) -> WeightSpec:
    return WeightSpec(cfg.weight_scheme, cfg.weight_bits, rowwise=rowwise, clip=cfg.weight_clip)


def _embedding_spec(cfg: QuantConfig, mode: EmbeddingMode) -> WeightSpec | None:
    return None if mode == "fp" else _weight_spec(cfg, rowwise=mode == "rowwise")


def _replacement(
    model: nn.Module, name: str, module: nn.Module, cfg: QuantConfig, act: ActSpec | None
) -> nn.Module | None:
    role = component(model, name)
    if isinstance(module, nn.Linear) and not isinstance(module, QuantLinear):
        if role == "classifier" and not cfg.classifier or role == "pooler" and not cfg.pooler:
            return None
        return QuantLinear.from_linear(
            module, weight_spec=_weight_spec(cfg, rowwise=False), act_spec=act, bias_bits=cfg.bias_bits
        )
    if (
        isinstance(module, nn.Embedding)
        and not isinstance(module, QuantEmbedding)
        and role in ("word_embeddings", "position_embeddings", "token_type_embeddings")
    ):
        spec = _embedding_spec(cfg, getattr(cfg, role))
        return None if spec is None else QuantEmbedding.from_embedding(module, spec)
    if isinstance(module, nn.LayerNorm) and not isinstance(module, QuantLayerNorm) and cfg.layernorm_bits:
        return QuantLayerNorm.from_layernorm(module, cfg.layernorm_bits)
    return None


def quantize_model(model: nn.Module, cfg: QuantConfig | None = None) -> nn.Module:
    """Make ``model`` a fake-quantized student (in place) and return it."""
    cfg = cfg or QuantConfig()
    act = ActSpec(cfg.act_bits, cfg.act_clip) if cfg.act_bits else None
    for name, module in list(model.named_modules()):
        new = _replacement(model, name, module, cfg, act)
        if new is not None:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, new)
    return use_kdqat_attention(model, act if cfg.quantize_attention else None)


def quantized_parameters(model: nn.Module) -> dict[str, WeightSpec]:
    """Every fake-quantized parameter (``"path.weight"``) with the spec its forward pass uses."""
    return {
        f"{name}.{param}": spec
        for name, m in model.named_modules()
        if isinstance(m, (QuantLinear, QuantEmbedding, QuantLayerNorm))
        for param, spec in m.param_specs().items()
    }


def freeze_quantized(model: nn.Module) -> nn.Module:
    """Replace latent weights by their quantized values and stop re-quantizing (inference/export)."""
    for m in model.modules():
        if isinstance(m, (QuantLinear, QuantEmbedding, QuantLayerNorm)):
            m.freeze()
    return model
