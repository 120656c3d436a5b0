"""VeRA on a compressed base: the source model comes through any registered artifact format.

A stand-in "pruned" format (an hf folder whose loader zeroes half of every query/value weight, the
way a ticket loader applies its masks) checks the contract the KD-QAT and tickets formats rely on:
the base is loaded by its own loader, stays frozen (so the mask holds), and the saved adapter is
reloaded onto that base unmerged (merging a dense delta W would destroy the sparsity).
"""

import pytest
import torch
from peft import PeftModel

from tailor.artifacts import Artifact, load_model, save_hf
from tailor.methods.vera.config import VeraConfig
from tailor.methods.vera.stages import run_vera
from tailor.plugins import register_format
from tailor.recipe import parse_recipe
from tailor.stages import StageContext
from tailor.zoo import models as zoo

from .conftest import needs

pytestmark = [pytest.mark.integration, needs("orangecontrib")]


def _prune(model):
    for name, p in model.named_parameters():
        if name.endswith(("query.weight", "value.weight")):
            with torch.no_grad():
                p[:, ::2] = 0.0
    return model


def _load_pruned(artifact, head, num_labels):
    return _prune(zoo.load_folder(artifact.path, head, num_labels))


register_format("test-pruned", f"{__name__}:_load_pruned")


def _zeros_kept(model) -> bool:
    weights = [
        p
        for n, p in model.named_parameters()
        if n.replace(".base_layer", "").endswith(("query.weight", "value.weight"))
    ]
    return len(weights) == 4 and all(torch.all(w[:, ::2] == 0) for w in weights)


def test_vera_on_a_pruned_base_keeps_the_mask_and_reloads_unmerged(tmp_path):
    saved = save_hf(zoo.load("tiny-bert", "classifier", num_labels=2), tmp_path / "pruned", "tiny-bert")
    source = Artifact(saved.path, "tiny-bert", "test-pruned").save()
    recipe = parse_recipe(
        {
            "name": "c",
            "model": "tiny-bert",
            "seeds": [0],
            "stages": [{"vera": {}}],
            "data": {"name": "tweets2016", "max_length": 24, "train_size": 64, "test_size": 48},
        }
    )
    ctx = StageContext(recipe, 0, tmp_path / "stage", source, {})
    cfg = VeraConfig(r=32, steps=3, batch_size=16, lr=5e-2, head_lr=1e-2)
    result = run_vera(cfg, ctx)

    assert result.artifact.base["format"] == "test-pruned"
    model = load_model(result.artifact)
    assert isinstance(model, PeftModel)  # not merged: the sparse base stays as it is
    assert _zeros_kept(model)
    vectors = [p for n, p in model.named_parameters() if "vera_lambda_b" in n]
    assert any(v.abs().sum() > 0 for v in vectors)  # and the adapter did train


def test_vera_on_the_kdqat_ternary_student(tmp_path):
    pytest.importorskip("tailor.methods.kdqat.quant")
    from tailor.engine.inputs import prepare
    from tailor.engine.metrics import evaluate
    from tailor.methods.kdqat.quant import QuantLinear
    from tailor.pipeline import run_recipe
    from tailor.zoo.data import load_task

    recipe = parse_recipe(
        {
            "name": "ternary-vera",
            "model": "tiny-bert",
            "seeds": [0],
            "data": {"name": "tweets2016", "max_length": 24, "train_size": 64, "test_size": 48},
            "stages": [
                {"finetune": {"steps": 2, "batch_size": 16, "lr": 1e-3}},
                {"qat_distill": {"steps": 2, "batch_size": 16}},
                {"vera": {"r": 32, "steps": 2, "batch_size": 16, "lr": 5e-2}},
            ],
        }
    )
    result = run_recipe(recipe, tmp_path)
    metrics = result.results["seeds"]["0"]["03-vera"]
    assert metrics["params"]["adapter_params"] == 4 * (32 + 32)
    stage = result.path / "seed-0" / "03-vera"
    artifact = Artifact.load(stage / "model")
    assert artifact.base["format"] == "kdqat_student"
    model = load_model(artifact)
    query = model.base_model.model.bert.encoder.layer[0].attention.self.query
    assert isinstance(model, PeftModel) and isinstance(query.base_layer, QuantLinear)  # ternary base kept
    scores = evaluate(model, prepare(load_task(recipe.data, 0), recipe.model, recipe.data), 64)
    assert scores["test"]["loss"] == pytest.approx(metrics["test"]["loss"], abs=1e-5)
