"""Shared fixtures: an isolated cache for generated tiny models, offline hub, quiet libraries."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def tiny_recipe():
    """A raw recipe dict that trains tiny-bert for a few steps on real tweets."""
    return {
        "name": "tiny",
        "model": "tiny-bert",
        "data": {"name": "tweets2016", "max_length": 24, "train_size": 64, "test_size": 48},
        "seeds": [0],
        "stages": [{"finetune": {"steps": 4, "lr": 1e-3, "batch_size": 16, "log_every": 1, "save_every": 2}}],
    }


VOCAB = 50  # the tiny BERT vocabulary of the unit tests: 4 special ids, then words
SPECIALS = {"pad": 0, "cls": 1, "sep": 2, "mask": 3}


@pytest.fixture
def text_batch():
    """Four token sequences of a tiny BERT vocabulary, one of them padded, with labels."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB, (4, 12), generator=g)
    ids[:, 0], ids[:, -1] = SPECIALS["cls"], SPECIALS["sep"]
    attention = torch.ones_like(ids)
    ids[0, 8:], attention[0, 8:] = 0, 0  # one padded example
    ids[0, 7] = SPECIALS["sep"]
    return {"input_ids": ids, "attention_mask": attention, "labels": torch.tensor([0, 1, 0, 1])}


def needs(*modules: str):
    """Skip a test cleanly when a zoo asset package is not installed."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"zoo asset not installed: {', '.join(missing)}")
