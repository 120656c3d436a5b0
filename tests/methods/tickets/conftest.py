import pytest
import torch

from tailor.zoo.architectures.resnet import ResNetCifarConfig, ResNetCifarForImageClassification


def tiny_resnet(num_labels: int = 5, seed: int = 0) -> ResNetCifarForImageClassification:
    torch.manual_seed(seed)
    cfg = ResNetCifarConfig(stem_channels=8, widths=[8, 16], depths=[1, 1], num_labels=num_labels)
    return ResNetCifarForImageClassification(cfg)


def randomize_bn(model: torch.nn.Module, seed: int = 1) -> None:
    """Give BatchNorms non-trivial running statistics and affine parameters (as after training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.fixture
def make_resnet():
    return tiny_resnet


@pytest.fixture
def bn_randomizer():
    return randomize_bn
