"""Which linear layers VeRA/LoRA adapt, per model family, and which head is trained alongside.

The paper adapts the attention query/value projections of RoBERTa, GPT-2 and ViT (Sec. 4.1-4.4)
and "all linear layers except the top one" of Llama (Sec. 4.3). We extend the decoder presets to
the attention *and* MLP projections of GPT-2 as well, as the issue asks. Names are the module-name
suffixes peft's ``target_modules`` matches.
"""

from __future__ import annotations

from typing import Iterable

QUERY_VALUE = (("query", "value"), ("q_proj", "v_proj"))  # transformers 5 renamed ViT/DINOv2's to q/v_proj
TARGET_PRESETS: dict[str, tuple[tuple[str, ...], ...]] = {
    "bert": QUERY_VALUE,
    "roberta": QUERY_VALUE,
    "xlm-roberta": QUERY_VALUE,
    "vit": QUERY_VALUE,
    "dinov2": QUERY_VALUE,
    "llama": (("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),),
    # GPT-2 uses fused Conv1D layers: c_attn = [q|k|v], attn.c_proj and mlp.c_proj, mlp.c_fc.
    "gpt2": (("c_attn", "c_proj", "c_fc"),),
}
"""Per family, alternative spellings of the same layers; the first one the model has is used."""

# Task heads: trained with their own learning rate and saved with the adapter, but not counted in
# the paper's trainable-parameter figures (Sec. 4.1). RoBERTa's classification head has a dense layer
# before the output projection; BERT's counterpart of that layer is the pooler, so it is part of the
# head for BERT-family classifiers (it is also newly initialised when a checkpoint lacks it).
HEAD_MODULE_NAMES: tuple[str, ...] = ("classifier", "score")
POOLED_HEAD_FAMILIES: tuple[str, ...] = ("bert",)


def model_family(model) -> str:
    """The ``config.model_type`` of a transformers model (e.g. ``"bert"``, ``"llama"``)."""
    config = getattr(model, "config", None)
    family = getattr(config, "model_type", None)
    if family is None:
        raise ValueError(f"{type(model).__name__} has no config.model_type; pass target_modules explicitly")
    return family


def target_modules_for(model, override: Iterable[str] | None = None) -> list[str]:
    """The preset target-module names for ``model``'s family, or ``override`` when given."""
    if override:
        return list(override)
    family = model_family(model)
    if family not in TARGET_PRESETS:
        raise ValueError(
            f"no VeRA/LoRA target preset for model family {family!r}; valid families: "
            f"{sorted(TARGET_PRESETS)}; or set target_modules explicitly in the stage config"
        )
    suffixes = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for names in TARGET_PRESETS[family]:
        if suffixes.issuperset(names):
            return list(names)
    raise ValueError(
        f"{type(model).__name__} has none of the {family!r} preset layers {TARGET_PRESETS[family]}; "
        "set target_modules explicitly"
    )


def head_modules_for(model) -> list[str]:
    """Task-head modules of a classifier (e.g. ``pooler.dense``, ``classifier``); empty for a causal LM."""
    heads = [name for name in HEAD_MODULE_NAMES if hasattr(model, name)]
    family = getattr(getattr(model, "config", None), "model_type", None)
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if heads and family in POOLED_HEAD_FAMILIES and getattr(backbone, "pooler", None) is not None:
        heads.insert(0, "pooler.dense")  # the Linear, not BertPooler: peft's merge_and_unload needs a .weight
    return heads
