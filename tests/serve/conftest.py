"""tiny-bert adapters (VeRA and LoRA, random non-zero weights) saved the way the vera/lora stages save them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tailor.artifacts import Artifact, load_model, save_hf
from tailor.methods.vera.adapters import build_lora, build_vera, randomize_adapters, save_adapter
from tailor.methods.vera.config import LoraFields, VeraFields
from tailor.methods.vera.stages import base_record
from tailor.zoo import models as zoo

LABELS = {"vera0": ["neg", "neu", "pos"], "vera1": ["a", "b", "c"], "lora0": ["x", "y", "z"]}


def save_random_adapter(base_art: Artifact, out: Path, kind: str, seed: int, labels: list[str], num_labels: int = 3):
    """An adapter with random trainable weights (as if trained) and its artifact.json; returns (model, folder)."""
    model = load_model(base_art, "classifier", num_labels)
    model = build_vera(model, VeraFields(r=16)) if kind == "vera" else build_lora(model, LoraFields(r=4))
    randomize_adapters(model, scale=0.5, seed=seed)
    path = save_adapter(model, out)
    Artifact(path, "tiny-bert", "peft", "classifier", labels, base=base_record(base_art, path, original=False)).save()
    return model.eval(), path


@pytest.fixture(scope="session")
def zoo_adapters(tmp_path_factory):
    """{"base": Artifact, "dirs": {name: folder}, "models": {name: peft model alone}, "foreign": folder}."""
    root = tmp_path_factory.mktemp("serve")
    base = save_hf(zoo.load("tiny-bert", "classifier", num_labels=3), root / "base", "tiny-bert")
    other = save_hf(zoo.load("tiny-bert", "classifier", num_labels=3), root / "other-base", "tiny-bert")
    models, dirs = {}, {}
    for seed, (name, labels) in enumerate(LABELS.items()):
        models[name], dirs[name] = save_random_adapter(base, root / name, name[:4], seed, labels)
    _, foreign = save_random_adapter(other, root / "foreign", "vera", 9, ["p", "q", "r"])
    return {"base": base, "dirs": dirs, "models": models, "foreign": foreign, "root": root}


def alone(model, text: str) -> list[float]:
    """Class probabilities of one text through one adapter's own peft model."""
    tok = zoo.tokenizer("tiny-bert")
    with torch.no_grad():
        return torch.softmax(model(**tok([text], return_tensors="pt")).logits, -1)[0].tolist()
