"""Remove whole attention heads and FFN neurons from a BERT/RoBERTa encoder, physically.

transformers 5.x dropped ``prune_heads``, so the slicing is hand-written here: a removed head's
rows of Q/K/V (and biases) and its columns of the attention-output projection go; a removed
neuron's row of ``intermediate.dense`` and column of ``output.dense`` go. Attention reshapes with
``-1`` heads, so the stock forward runs on the smaller Linears unchanged. A head whose Q/K/V rows
are zero gives zero context (uniform attention over zero values) and a neuron whose input row and
bias are zero gives GELU(0) = 0, so the masked and the sliced model compute the same function
(tested). Per-layer head counts differ, so the smaller model is an in-memory model: it is what
``tailor bench tickets`` times and ``tailor export --format onnx`` could serialise.
"""
from __future__ import annotations

import torch
from torch import nn

PROJECTIONS = ("query", "key", "value")


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """Layers with ``attention`` (holding query/key/value), ``intermediate.dense`` and ``output.dense``."""
    layers = [m for m in model.modules() if hasattr(m, "attention") and hasattr(m, "intermediate")
              and hasattr(m, "output") and hasattr(getattr(m, "intermediate"), "dense")]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no BERT-style encoder layers (attention with query/key/value, "
                         "intermediate, output); transformers 5.x ViT (q_proj/.../mlp.fc1) is not supported yet")
    return layers


def _self_attention(layer: nn.Module) -> nn.Module:
    return next(m for m in layer.attention.modules() if all(isinstance(getattr(m, p, None), nn.Linear) for p in PROJECTIONS))


def _rows(linear: nn.Linear, keep: torch.Tensor) -> None:
    linear.weight = nn.Parameter(linear.weight.data[keep].clone())
    if linear.bias is not None:
        linear.bias = nn.Parameter(linear.bias.data[keep].clone())
    linear.out_features = int(keep.sum())


def _cols(linear: nn.Linear, keep: torch.Tensor) -> None:
    linear.weight = nn.Parameter(linear.weight.data[:, keep].clone())
    linear.in_features = int(keep.sum())


def head_neuron_scores(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: mean |w| of each head (its Q/K/V rows) and of each FFN neuron (its input row)."""
    out = []
    for layer in encoder_layers(model):
        attn = _self_attention(layer)
        d = attn.attention_head_size
        qkv = torch.cat([getattr(attn, p).weight.detach().abs() for p in PROJECTIONS], dim=1)  # (heads·d, 3·hidden)
        out.append((qkv.view(-1, d * qkv.shape[1]).mean(1), layer.intermediate.dense.weight.detach().abs().mean(1)))
    return out


def keep_top(scores: list[tuple[torch.Tensor, torch.Tensor]], fraction: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, keep the top ``fraction`` of heads and of neurons by score (at least one of each)."""
    def top(s: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros_like(s, dtype=torch.bool)
        keep[s.topk(max(1, round(fraction * s.numel()))).indices] = True
        return keep
    return [(top(h), top(n)) for h, n in scores]


@torch.no_grad()
def mask_heads_and_neurons(model: nn.Module, keep: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Zero the removed heads' Q/K/V rows and biases and the removed neurons' rows and biases, in place."""
    for layer, (heads, neurons) in zip(encoder_layers(model), keep):
        attn = _self_attention(layer)
        rows = heads.repeat_interleave(attn.attention_head_size)
        for p in PROJECTIONS:
            lin = getattr(attn, p)
            lin.weight[~rows] = 0
            lin.bias[~rows] = 0
        layer.intermediate.dense.weight[~neurons] = 0
        layer.intermediate.dense.bias[~neurons] = 0


@torch.no_grad()
def remove_heads_and_neurons(model: nn.Module, keep: list[tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    """Slice the kept heads and neurons out of ``model`` in place and return it."""
    for layer, (heads, neurons) in zip(encoder_layers(model), keep):
        attn = _self_attention(layer)
        rows = heads.repeat_interleave(attn.attention_head_size)
        for p in PROJECTIONS:
            _rows(getattr(attn, p), rows)
        attn.num_attention_heads = int(heads.sum())
        attn.all_head_size = attn.num_attention_heads * attn.attention_head_size
        _cols(layer.attention.output.dense, rows)
        _rows(layer.intermediate.dense, neurons)
        _cols(layer.output.dense, neurons)
    return model
