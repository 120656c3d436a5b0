"""Tiny random models (built from small configs) for the self-distillation unit tests."""

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, Dinov2Config, Dinov2Model, ViTMAEConfig, ViTMAEForPreTraining

from ...conftest import SPECIALS, VOCAB  # noqa: F401  (test_objectives takes them from here)


@pytest.fixture
def tiny_bert_mlm():
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        pad_token_id=0,
    )
    return BertForMaskedLM(cfg)


@pytest.fixture
def tiny_dinov2():
    torch.manual_seed(0)
    cfg = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        patch_size=4,
        image_size=16,
        num_channels=3,
    )
    return Dinov2Model(cfg)


@pytest.fixture
def tiny_vitmae():
    torch.manual_seed(0)
    cfg = ViTMAEConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        patch_size=4,
        image_size=16,
        num_channels=3,
        decoder_hidden_size=8,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=16,
        mask_ratio=0.75,
        norm_pix_loss=True,
    )
    return ViTMAEForPreTraining(cfg)


@pytest.fixture
def image_batch():
    g = torch.Generator().manual_seed(2)
    return {"pixel_values": torch.randn(3, 3, 16, 16, generator=g), "labels": torch.tensor([0, 1, 2])}
