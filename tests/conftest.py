"""Shared fixtures: an isolated cache for generated tiny models, offline hub, quiet libraries."""
import os

import pytest

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


def needs(*modules: str):
    """Skip a test cleanly when a zoo asset package is not installed."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"zoo asset not installed: {', '.join(missing)}")
