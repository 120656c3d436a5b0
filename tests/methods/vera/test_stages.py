"""The `vera`/`lora` stages through the real pipeline: tiny random models on real zoo text."""

import json
import os
import shutil

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification

from tailor.artifacts import Artifact, load_model
from tailor.engine.inputs import prepare
from tailor.engine.metrics import evaluate
from tailor.methods.vera.stages import base_artifact
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe
from tailor.zoo.data import load_task
from tailor.zoo.models import resolve

from .conftest import needs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytestmark = [pytest.mark.integration, needs("orangecontrib")]

DATA = {"name": "tweets2016", "max_length": 24, "train_size": 64, "test_size": 48, "validation_size": 32}


def _run(tmp_path, stages, model="tiny-bert"):
    recipe = parse_recipe({"name": "t", "model": model, "data": DATA, "seeds": [0], "stages": stages})
    result = run_recipe(recipe, tmp_path)
    return recipe, result


def _artifact(result, stage_id):
    record = json.loads((result.path / "seed-0" / stage_id / "done.json").read_text())
    return Artifact.load(result.path / "seed-0" / stage_id / record["artifact"])


def test_vera_stage_adapter_loads_in_plain_peft_with_the_recorded_scores(tmp_path):
    train = {"steps": 3, "batch_size": 16, "lr": 5e-2, "head_lr": 1e-2, "log_every": 1}
    recipe, result = _run(tmp_path, [{"vera": {"r": 64, "save_projection": False, **train}}])
    metrics = result.results["seeds"]["0"]["01-vera"]
    assert metrics["params"]["adapter_params"] == 4 * (32 + 64)
    assert metrics["bytes"]["vector_bytes"] == 4 * 4 * (32 + 64) and metrics["bytes"]["projection_bytes"] == 0

    artifact = _artifact(result, "01-vera")
    assert artifact.format == "peft" and (artifact.path / "adapter_config.json").exists()
    assert "path" not in artifact.base  # the original model is found again by its zoo name
    base = AutoModelForSequenceClassification.from_pretrained(resolve("tiny-bert"), num_labels=2)
    plain = PeftModel.from_pretrained(base, artifact.path).eval()  # nothing from tailor involved
    inputs = prepare(load_task(recipe.data, 0), recipe.model, recipe.data)
    scores = evaluate(plain, inputs, 64)
    assert scores["test"]["loss"] == pytest.approx(metrics["test"]["loss"], abs=1e-5)
    assert scores["test"]["accuracy"] == metrics["test"]["accuracy"]
    merged = evaluate(load_model(artifact), inputs, 64)  # tailor's loader: base + adapter, merged
    assert merged["test"]["loss"] == pytest.approx(metrics["test"]["loss"], abs=1e-4)


def test_lora_after_finetune_adapts_the_previous_stage(tmp_path):
    recipe, result = _run(
        tmp_path,
        [{"finetune": {"steps": 2, "batch_size": 16, "lr": 1e-3}}, {"lora": {"r": 4, "steps": 2, "batch_size": 16}}],
    )
    metrics = result.results["seeds"]["0"]["02-lora"]
    assert metrics["params"]["adapter_params"] == 4 * 4 * (32 + 32)
    artifact = _artifact(result, "02-lora")
    assert base_artifact(artifact).path == _artifact(result, "01-finetune").path.resolve()
    inputs = prepare(load_task(recipe.data, 0), "tiny-bert", recipe.data)
    expected = evaluate(load_model(artifact), inputs, 64)["test"]["loss"]
    moved = tmp_path / "moved"
    shutil.move(result.path, moved)  # the base is found relative to the adapter, so the run folder can move
    adapter = Artifact.load(moved / artifact.path.relative_to(result.path))
    assert evaluate(load_model(adapter), inputs, 64)["test"]["loss"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("stage", [{"vera": {"r": 32, "task": "causal_lm"}}, {"lora": {"r": 4, "task": "causal_lm"}}])
def test_causal_lm_stage_reports_perplexity(tmp_path, stage):
    ((name, cfg),) = stage.items()
    _, result = _run(tmp_path, [{name: {**cfg, "steps": 2, "batch_size": 8}}], model="tiny-gpt2")
    metrics = result.results["seeds"]["0"][f"01-{name}"]
    assert 1.0 < metrics["test"]["perplexity"] < 1e4 and metrics["test"]["tokens"] > 100
    model = load_model(_artifact(result, f"01-{name}"))
    assert isinstance(model, torch.nn.Module) and not isinstance(model, PeftModel)  # merged onto an hf base
