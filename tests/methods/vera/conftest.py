"""Tiny random transformers models (code paths only) and helpers that give adapters non-trivial vectors."""

from __future__ import annotations

import pytest
import torch
from peft.tuners.vera.layer import VeraLayer
from peft.utils.other import ModulesToSaveWrapper
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Dinov2Config,
    Dinov2ForImageClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

from ...conftest import needs  # noqa: F401  (the vera tests take it from here)


def tiny_bert(num_labels: int = 3, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(cfg).eval()


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(cfg).eval()


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64)).eval()


def tiny_dinov2(num_labels: int = 4, seed: int = 0) -> Dinov2ForImageClassification:
    torch.manual_seed(seed)
    cfg = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=28,
        patch_size=7,
        num_labels=num_labels,
    )
    return Dinov2ForImageClassification(cfg).eval()


@torch.no_grad()
def randomize_adapter(model: torch.nn.Module, name: str, seed: int) -> None:
    """Give adapter ``name`` random d, b and head weights, as if it had been trained."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, VeraLayer) and name in module.vera_lambda_d:
            for p in (module.vera_lambda_d[name], module.vera_lambda_b[name]):
                p.copy_(torch.randn(p.shape, generator=gen))
        if isinstance(module, ModulesToSaveWrapper) and name in module.modules_to_save:
            for p in module.modules_to_save[name].parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def token_batch(rows: int, length: int = 7, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (rows, length), generator=gen)
    mask = torch.ones_like(ids)
    mask[::2, -2:] = 0  # some padded rows
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(autouse=True)
def _quiet_threads():
    torch.set_num_threads(1)
