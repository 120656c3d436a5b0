"""Tiny random encoders (BERT, RoBERTa, ViT) for code-path tests."""

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    ViTConfig,
    ViTForImageClassification,
)

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def tiny_bert(num_labels: int = 3, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=60, max_position_embeddings=32, num_labels=num_labels, **SMALL)
    return BertForSequenceClassification(cfg).eval()


def tiny_roberta(seed: int = 0) -> RobertaForSequenceClassification:
    torch.manual_seed(seed)
    cfg = RobertaConfig(vocab_size=60, max_position_embeddings=40, num_labels=2, **SMALL)
    return RobertaForSequenceClassification(cfg).eval()


def tiny_vit(seed: int = 0) -> ViTForImageClassification:
    torch.manual_seed(seed)
    cfg = ViTConfig(image_size=16, patch_size=8, num_channels=3, num_labels=4, **SMALL)
    return ViTForImageClassification(cfg).eval()


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 60, (3, 9), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture
def tiny():
    """Builders of tiny random models: ``tiny.bert()``, ``tiny.roberta()``, ``tiny.vit()``."""

    class Tiny:
        bert, roberta, vit = staticmethod(tiny_bert), staticmethod(tiny_roberta), staticmethod(tiny_vit)

    return Tiny
