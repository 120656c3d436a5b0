"""A CIFAR-style ResNet (He et al. 2016, Sec. 4.2) as Hugging Face classes.

No registry ships a ResNet with weights and torchvision does not import here, so the network is
written in the project. Layout: 3x3 stem, stages of BasicBlocks (3x3 -> 3x3, projection shortcut
when the shape changes), global average pooling, linear head. ``inner_channels`` lets each block
have its own hidden width, which is what a channel-pruned ticket exports to (see
``tailor.methods.tickets.structured``). Inputs are ``pixel_values`` [B, C, H, W]; normalisation is
the caller's business (attacks keep it in a wrapper so that epsilon is in pixel units).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput


class ResNetCifarConfig(PretrainedConfig):
    """``widths[i]``/``depths[i]``: channels and block count of stage i (stage i>0 halves H, W).

    ``inner_channels``: per-block hidden width (flattened over stages); ``None`` means the block's
    output width, i.e. the ordinary dense ResNet.
    """

    model_type = "resnet_cifar"

    def __init__(
        self,
        num_channels: int = 3,
        stem_channels: int = 16,
        widths=(16, 32, 64),
        depths=(2, 2, 2),
        inner_channels=None,
        **kwargs,
    ):
        if len(widths) != len(depths):
            raise ValueError(f"widths {list(widths)} and depths {list(depths)} must have the same length")
        self.num_channels = num_channels
        self.stem_channels = stem_channels
        self.widths = list(widths)
        self.depths = list(depths)
        n_blocks = sum(self.depths)
        if inner_channels is not None and len(inner_channels) != n_blocks:
            raise ValueError(f"inner_channels needs one width per block ({n_blocks}), got {len(inner_channels)}")
        self.inner_channels = list(inner_channels) if inner_channels is not None else None
        super().__init__(**kwargs)

    def block_plan(self) -> list[tuple[int, int, int, int]]:
        """(in_channels, inner_channels, out_channels, stride) for every block, in order."""
        plan, c_in, k = [], self.stem_channels, 0
        for s, (width, depth) in enumerate(zip(self.widths, self.depths)):
            for b in range(depth):
                inner = self.inner_channels[k] if self.inner_channels is not None else width
                plan.append((c_in, inner, width, 2 if (s > 0 and b == 0) else 1))
                c_in, k = width, k + 1
        return plan


class BasicBlock(nn.Module):
    """conv1 -> bn1 -> relu -> conv2 -> bn2, plus the (projection) shortcut, then relu."""

    def __init__(self, c_in: int, inner: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, inner, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNetCifarPreTrainedModel(PreTrainedModel):
    config_class = ResNetCifarConfig
    config: ResNetCifarConfig
    base_model_prefix = "resnet"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.uniform_(module.bias, -1 / math.sqrt(module.in_features), 1 / math.sqrt(module.in_features))
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)


class ResNetCifarModel(ResNetCifarPreTrainedModel):
    """The backbone: returns the last feature map and its global average (``pooler_output``)."""

    def __init__(self, config: ResNetCifarConfig):
        super().__init__(config)
        self.stem = nn.Sequential(
            nn.Conv2d(config.num_channels, config.stem_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(config.stem_channels),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(*(BasicBlock(*p) for p in config.block_plan()))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPoolingAndNoAttention:
        h = self.blocks(self.stem(pixel_values))
        return BaseModelOutputWithPoolingAndNoAttention(last_hidden_state=h, pooler_output=h.mean(dim=(2, 3)))


class ResNetCifarForImageClassification(ResNetCifarPreTrainedModel):
    """Backbone + linear ``classifier``; cross-entropy loss when ``labels`` are given."""

    def __init__(self, config: ResNetCifarConfig):
        super().__init__(config)
        self.resnet = ResNetCifarModel(config)
        self.classifier = nn.Linear(config.widths[-1], config.num_labels)
        self.post_init()

    def forward(
        self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **kwargs
    ) -> ImageClassifierOutput:
        logits = self.classifier(self.resnet(pixel_values).pooler_output)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


AutoConfig.register("resnet_cifar", ResNetCifarConfig, exist_ok=True)
AutoModel.register(ResNetCifarConfig, ResNetCifarModel, exist_ok=True)
AutoModelForImageClassification.register(ResNetCifarConfig, ResNetCifarForImageClassification, exist_ok=True)
