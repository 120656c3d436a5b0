"""The project's CIFAR-style ResNet behaves as a Hugging Face model."""

import torch
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

from tailor.zoo.architectures.resnet import ResNetCifarConfig


def test_forward_loss_and_auto_round_trip(make_resnet, tmp_path):
    model = make_resnet(num_labels=5)
    x = torch.rand(2, 3, 28, 28)
    out = model(pixel_values=x, labels=torch.tensor([1, 4]))
    assert out.logits.shape == (2, 5)
    assert torch.isclose(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 4])))
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "resnet_cifar"
    again = AutoModelForImageClassification.from_pretrained(tmp_path)
    model.eval(), again.eval()
    assert torch.equal(again(pixel_values=x).logits, model(pixel_values=x).logits)
    backbone = AutoModel.from_pretrained(tmp_path)
    assert backbone(pixel_values=x).pooler_output.shape == (2, 16)


def test_block_plan_strides_and_inner_widths():
    cfg = ResNetCifarConfig(stem_channels=4, widths=[4, 8], depths=[2, 1], inner_channels=[1, 2, 3])
    assert cfg.block_plan() == [(4, 1, 4, 1), (4, 2, 4, 1), (4, 3, 8, 2)]
