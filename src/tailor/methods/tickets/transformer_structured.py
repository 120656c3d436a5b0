"""Structured tickets for transformer encoders: whole attention heads and FFN neurons.

The ``heads`` and ``heads_ffn`` patterns score a BERT/RoBERTa or ViT encoder per attention head
(the mean score of its Q/K/V rows) and per FFN neuron (the mean score of its input row), so OMP,
A-IMP and LMP choose units with the same ranking code as every other pattern. A unit's mask covers
every weight that goes with it: the head's Q/K/V rows and biases and its columns of the attention
output projection; the neuron's input row and bias and its column of the FFN output.

transformers 5.x dropped ``prune_heads``, so the physical removal is hand-written here: a head whose
V rows and bias are zero gives zero context (attention over zero values) and a neuron whose input
row and bias are zero gives act(0) = 0 (GELU, ReLU), so slicing them out leaves the function
unchanged (tested). Attention reshapes with ``-1`` heads, so the stock forward runs on the smaller
Linears. Per-layer head counts differ, which no transformers config can express, so the smaller
model records them in ``config.pruned_structure`` and is saved with :func:`save_sliced` (config plus
``sliced.safetensors`` under the module's own parameter names, since ``save_pretrained`` renames
keys to a checkpoint layout that cannot be loaded back into a resized model) and loaded with
:func:`load_sliced`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...files import atomic_save_safetensors
from .masks import Mask, apply_masks, keep_top_fraction

# per architecture, paths inside one encoder layer: self-attention (holds the head count), Q, K, V,
# attention output, FFN in, FFN out, FFN activation
_LAYOUTS = {
    "bert": (
        "attention.self",
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
        "intermediate.intermediate_act_fn",
    ),
    "vit": (
        "attention",
        "attention.q_proj",
        "attention.k_proj",
        "attention.v_proj",
        "attention.o_proj",
        "mlp.fc1",
        "mlp.fc2",
        "mlp.activation_fn",
    ),
}
UNIT_PATTERNS = ("heads", "heads_ffn")


@dataclass(frozen=True)
class Block:
    """One encoder layer: ``prefix`` plus the module paths of its attention and FFN Linears."""

    prefix: str
    attention: nn.Module
    q: str
    k: str
    v: str
    o: str
    ffn_in: str
    ffn_out: str
    act: nn.Module

    @property
    def head_size(self) -> int:
        return getattr(self.attention, "attention_head_size", None) or self.attention.head_dim

    def linear(self, model: nn.Module, which: str) -> nn.Linear:
        return model.get_submodule(getattr(self, which))


def _resolve(layer: nn.Module, path: str):
    obj = layer
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


def encoder_blocks(model: nn.Module) -> list[Block]:
    """Every BERT/RoBERTa-style or ViT-style encoder layer of ``model``."""
    out = []
    for name, layer in model.named_modules():
        for layout in _LAYOUTS.values():
            parts = [_resolve(layer, p) for p in layout]
            if all(isinstance(m, nn.Linear) for m in parts[1:7]):
                prefix = f"{name}." if name else ""
                out.append(Block(name, parts[0], *(prefix + p for p in layout[1:7]), parts[7]))
    if not out:
        raise ValueError(
            f"{type(model).__name__} has no BERT/RoBERTa- or ViT-style encoder layers "
            "(attention query/key/value or q_proj/k_proj/v_proj, and an FFN): patterns "
            f"{', '.join(UNIT_PATTERNS)} need one"
        )
    return out


def unit_weights(model: nn.Module, pattern: str) -> dict[str, nn.Parameter]:
    """The scored weights: Q/K/V of every layer (heads), plus the FFN input (heads_ffn)."""
    which = ("q", "k", "v", "ffn_in") if pattern == "heads_ffn" else ("q", "k", "v")
    return {f"{getattr(b, w)}.weight": b.linear(model, w).weight for b in encoder_blocks(model) for w in which}


def _rows(keep: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return keep.view(-1, *([1] * (like.dim() - 1))).expand_as(like).clone()


def unit_masks(
    model: nn.Module, scores: Mapping[str, torch.Tensor], pattern: str, keep_frac: float, scope: str
) -> Mask:
    """Rank heads (and neurons) by their mean score, keep the top ``keep_frac`` of each (at least one
    per layer), and mask every weight that goes with a removed unit."""
    scores = {k: s.detach().float() for k, s in scores.items()}
    blocks = encoder_blocks(model)
    heads = keep_top_fraction(
        {
            b.prefix: torch.cat([scores[f"{getattr(b, p)}.weight"] for p in "qkv"], dim=1)
            .reshape(-1, b.head_size * 3 * b.linear(model, "q").in_features)
            .mean(1)
            for b in blocks
        },
        keep_frac,
        scope,
        min_keep=1,
    )
    neurons = (
        keep_top_fraction(
            {b.prefix: scores[f"{b.ffn_in}.weight"].mean(1) for b in blocks}, keep_frac, scope, min_keep=1
        )
        if pattern == "heads_ffn"
        else {}
    )
    mask = Mask()
    for b in blocks:
        groups = [(heads[b.prefix].repeat_interleave(b.head_size), ("q", "k", "v"), "o")]
        if b.prefix in neurons:
            groups.append((neurons[b.prefix], ("ffn_in",), "ffn_out"))
        for keep, producers, consumer in groups:
            for which in producers:
                lin = b.linear(model, which)
                mask[f"{getattr(b, which)}.weight"] = _rows(keep, lin.weight)
                if lin.bias is not None:
                    mask[f"{getattr(b, which)}.bias"] = keep.clone()
            out = b.linear(model, consumer)
            mask[f"{getattr(b, consumer)}.weight"] = keep.view(1, -1).expand_as(out.weight).clone()
    return mask


def _zero(lin: nn.Linear) -> torch.Tensor:
    """Per output row: is the row (and its bias) exactly zero?"""
    zero = lin.weight.eq(0).all(dim=1)
    return zero & lin.bias.eq(0) if lin.bias is not None else zero


def removable(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, the heads and neurons to keep: a head goes if its V rows and bias are zero, a neuron
    if its input row and bias are zero and the activation maps 0 to 0."""
    out = []
    for b in encoder_blocks(model):
        heads = ~_zero(b.linear(model, "v")).view(-1, b.head_size).all(dim=1)
        neurons = ~_zero(b.linear(model, "ffn_in"))
        if float(b.act(torch.zeros(1))) != 0:
            neurons[:] = True
        heads[0] |= not heads.any()  # a layer keeps one head and one neuron, so it stays a valid layer
        neurons[0] |= not neurons.any()
        out.append((heads, neurons))
    return out


def _slice(lin: nn.Linear, keep: torch.Tensor, dim: int) -> None:
    lin.weight = nn.Parameter(lin.weight.data.index_select(dim, keep.nonzero().flatten()).clone())
    if dim == 0 and lin.bias is not None:
        lin.bias = nn.Parameter(lin.bias.data[keep].clone())
    if dim == 0:
        lin.out_features = int(keep.sum())
    else:
        lin.in_features = int(keep.sum())


@torch.no_grad()
def remove_heads_and_neurons(model: nn.Module, keep: list[tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    """Slice the kept heads and neurons out of ``model`` in place and return it."""
    for b, (heads, neurons) in zip(encoder_blocks(model), keep):
        rows = heads.repeat_interleave(b.head_size)
        for which in ("q", "k", "v"):
            _slice(b.linear(model, which), rows, 0)
        _slice(b.linear(model, "o"), rows, 1)
        _slice(b.linear(model, "ffn_in"), neurons, 0)
        _slice(b.linear(model, "ffn_out"), neurons, 1)
        b.attention.num_attention_heads = int(heads.sum())
        if hasattr(b.attention, "all_head_size"):
            b.attention.all_head_size = int(rows.sum())
    model.config.pruned_structure = {
        "heads": [int(h.sum()) for h, _ in keep],
        "neurons": [int(n.sum()) for _, n in keep],
    }
    return model


@torch.no_grad()
def export_heads_and_neurons(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """A smaller copy of a masked encoder with its pruned heads and FFN neurons removed."""
    small = copy.deepcopy(model)
    apply_masks(small, masks)
    keep = removable(small)
    if all(bool(h.all() and n.all()) for h, n in keep):
        raise ValueError(
            "no whole attention head or FFN neuron is pruned in this ticket; draw it with "
            f"pattern: {' or '.join(UNIT_PATTERNS)}"
        )
    return remove_heads_and_neurons(small, keep)


SLICED_FILE = "sliced.safetensors"


def save_sliced(model: nn.Module, folder: Path) -> None:
    """The config (with ``pruned_structure``) and the weights by parameter name."""
    folder = Path(folder)
    model.config.save_pretrained(folder)
    atomic_save_safetensors({k: v.contiguous() for k, v in model.state_dict().items()}, folder / SLICED_FILE)


def load_sliced(folder: Path, num_labels: int | None = None) -> nn.Module:
    """Rebuild a model saved by :func:`remove_heads_and_neurons` (its per-layer widths are in its config)."""
    import transformers as tf
    from safetensors.torch import load_file

    config = tf.AutoConfig.from_pretrained(folder)
    if num_labels is not None and num_labels != config.num_labels:
        raise ValueError(
            f"{folder} is an exported ticket with {config.num_labels} labels and keeps its head; asked for {num_labels}"
        )
    image = hasattr(config, "num_channels")
    auto = tf.AutoModelForImageClassification if image else tf.AutoModelForSequenceClassification
    model = auto.from_config(config)
    structure = config.pruned_structure
    keep = [
        (torch.arange(b.attention.num_attention_heads) < h, torch.arange(b.linear(model, "ffn_in").out_features) < n)
        for b, h, n in zip(encoder_blocks(model), structure["heads"], structure["neurons"])
    ]
    remove_heads_and_neurons(model, keep)
    model.load_state_dict(load_file(str(Path(folder) / SLICED_FILE)))
    return model.eval()
