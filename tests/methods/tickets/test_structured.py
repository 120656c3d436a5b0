"""Structured export: channel-pruned resnet_cifar tickets become smaller models with equal outputs."""

import pytest
import torch
from transformers import AutoModelForImageClassification

from tailor.methods.tickets.config import MaskSpec
from tailor.methods.tickets.masks import apply_masks
from tailor.methods.tickets.pruning import omp
from tailor.methods.tickets.structured import export_channel_pruned


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_exported_model_equals_masked_model(make_resnet, bn_randomizer, tmp_path, scope):
    model = make_resnet()
    bn_randomizer(model)
    model.eval()
    masks = omp(model, MaskSpec(pattern="channel", sparsity=0.5, scope=scope))
    apply_masks(model, masks)
    small = export_channel_pruned(model, masks).eval()
    x = torch.rand(3, 3, 16, 16)
    assert torch.allclose(small(pixel_values=x).logits, model(pixel_values=x).logits, atol=1e-5)
    n_small = sum(p.numel() for p in small.parameters())
    n_full = sum(p.numel() for p in model.parameters())
    assert n_small < n_full
    assert sum(small.config.inner_channels) == 12  # half of 8 + 16
    small.save_pretrained(tmp_path)  # an ordinary HF model: reloads with its smaller config
    again = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert torch.allclose(again(pixel_values=x).logits, model(pixel_values=x).logits, atol=1e-5)


def test_unstructured_zero_filter_with_live_bn_shift_is_kept(make_resnet, bn_randomizer):
    """A conv filter that is zero but whose BN still adds a positive constant is not removable."""
    model = make_resnet()
    bn_randomizer(model)
    model.eval()
    with torch.no_grad():
        block = model.resnet.blocks[0]
        block.conv1.weight[0].zero_()
        block.bn1.bias[0] = 1.0
        block.conv1.weight[1].zero_()
        block.bn1.bias[1] = -1.0
        block.bn1.running_mean[1] = 0.0
    small = export_channel_pruned(model, {}).eval()
    assert small.config.inner_channels[0] == 7  # channel 1 (relu(-1) = 0) goes, channel 0 stays
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(small(pixel_values=x).logits, model(pixel_values=x).logits, atol=1e-5)


def test_export_rejects_other_models():
    with pytest.raises(ValueError, match="resnet_cifar"):
        export_channel_pruned(torch.nn.Linear(2, 2), {})


def test_export_ticket_command_writes_a_smaller_hf_artifact(make_resnet, bn_randomizer, tmp_path):
    from tailor.artifacts import Artifact, load_model
    from tailor.methods.tickets.commands import export_ticket

    model = make_resnet(num_labels=3)
    bn_randomizer(model)
    masks = omp(model, MaskSpec(pattern="channel", sparsity=0.5))
    apply_masks(model, masks)
    ticket = tmp_path / "ticket"
    model.save_pretrained(ticket)
    masks.save(ticket / "masks.safetensors")
    Artifact(ticket, "tiny", "ticket").save()
    result = export_ticket(ticket, tmp_path / "small")
    assert result["params_exported"] < result["params_ticket"] and result["max_abs_logit_diff"] < 1e-5
    small = load_model(Artifact.load(tmp_path / "small"), "classifier", 3).eval()
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(small(pixel_values=x).logits, model.eval()(pixel_values=x).logits, atol=1e-5)
