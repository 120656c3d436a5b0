"""The stages through the real pipeline on real data (sklearn digits, always installed), tiny settings."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import ViTImageProcessor

from tailor.artifacts import Artifact, load_model
from tailor.config import ConfigError
from tailor.methods.tickets.masks import Mask
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe

FAST = {"batch_size": 16, "lr": 3e-3, "log_every": 1, "save_every": 1000, "eval_batch_size": 64}
DIGITS = {"name": "digits", "train_size": 64, "test_size": 32, "image_size": 16}
ATTACK = {"eps": "4/255", "steps": 1}


@pytest.fixture
def base_folder(tmp_path, make_resnet):
    folder = tmp_path / "base"
    make_resnet(num_labels=10).save_pretrained(folder)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(
        folder
    )
    return folder


def _run(base, stages, tmp_path):
    recipe = parse_recipe({"name": "t", "model": str(base), "data": DIGITS, "seeds": [0], "stages": stages})
    result = run_recipe(recipe, tmp_path / "runs")
    seed_dir = result.path / "seed-0"
    return result.results["seeds"]["0"], {p.name: Artifact.load(p / "model") for p in sorted(seed_dir.iterdir())}


def test_recipe_rejects_unknown_keys_and_bad_choices(base_folder):
    with pytest.raises(ConfigError, match="valid keys here"):
        parse_recipe(
            {"name": "t", "model": str(base_folder), "data": DIGITS, "stages": [{"draw_ticket": {"sparsty": 0.5}}]}
        )
    with pytest.raises(ConfigError, match="scheme"):
        parse_recipe(
            {"name": "t", "model": str(base_folder), "data": DIGITS, "stages": [{"draw_ticket": {"scheme": "random"}}]}
        )


@pytest.mark.integration
def test_pretrain_omp_finetune_linear_keeps_masks(base_folder, tmp_path):
    stages = [
        {"robust_pretrain": {**FAST, "steps": 2, "attack": ATTACK, "eval_attack": ATTACK, "robust_eval_size": 16}},
        {"draw_ticket": {**FAST, "scheme": "omp", "pattern": "channel", "sparsity": 0.5}},
        {"transfer": {**FAST, "steps": 3, "data": {**DIGITS, "classes": [0, 1, 2]}}},
        {"transfer": {**FAST, "steps": 3, "protocol": "linear", "source": "02-draw_ticket"}},
    ]
    metrics, arts = _run(base_folder, stages, tmp_path)
    assert 0 <= metrics["01-robust_pretrain"]["test"]["robust_accuracy"] <= 1
    ticket = arts["02-draw_ticket"]
    assert ticket.format == "ticket" and metrics["02-draw_ticket"]["sparsity"] == pytest.approx(0.5, abs=0.05)
    masks = Mask.load(ticket.path / "masks.safetensors")
    assert (ticket.path / "sparsity.json").is_file()
    # masks held fixed through fine-tuning: same masks stored, and every pruned weight is exactly zero
    assert metrics["03-transfer"]["mask_violations"] == 0
    tuned = load_file(str(arts["03-transfer"].path / "model.safetensors"))
    for k, m in masks.items():
        assert (tuned[k][~m] == 0).all()
        assert torch.equal(Mask.load(arts["03-transfer"].path / "masks.safetensors")[k], m)
    assert load_model(arts["03-transfer"], "classifier", 3).classifier.out_features == 3
    # linear evaluation: every backbone tensor (BN statistics included) is the ticket's
    drawn = load_file(str(ticket.path / "model.safetensors"))
    probed = load_file(str(arts["04-transfer"].path / "model.safetensors"))
    backbone = [k for k in drawn if not k.startswith("classifier.")]
    assert backbone and all(torch.equal(drawn[k], probed[k]) for k in backbone)
    assert not torch.equal(drawn["classifier.weight"], probed["classifier.weight"])


@pytest.mark.integration
def test_aimp_and_lmp_stages(base_folder, tmp_path):
    stages = [
        {"draw_ticket": {**FAST, "scheme": "aimp", "sparsity": 0.75, "rounds": 2, "steps": 2, "attack": ATTACK}},
        {"draw_ticket": {**FAST, "scheme": "aimp", "sparsity": 0.9, "rounds": 1, "steps": 1, "attack": None}},
        {"draw_ticket": {**FAST, "scheme": "lmp", "sparsity": 0.8, "steps": 2, "data": {**DIGITS, "classes": [3, 4]}}},
    ]
    metrics, arts = _run(base_folder, stages, tmp_path)
    assert [len(metrics["01-draw_ticket"]["rounds"]), len(metrics["02-draw_ticket"]["rounds"])] == [2, 1]
    first = Mask.load(arts["01-draw_ticket"].path / "masks.safetensors")
    second = Mask.load(arts["02-draw_ticket"].path / "masks.safetensors")
    assert metrics["02-draw_ticket"]["sparsity"] == pytest.approx(0.9, abs=0.01)
    assert all((~first[k] & second[k]).sum() == 0 for k in first)  # IMP continues: nothing pruned comes back
    assert metrics["03-draw_ticket"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    lmp_model = load_model(arts["03-draw_ticket"], "classifier", 2)
    assert lmp_model.classifier.out_features == 2 and "accuracy" in metrics["03-draw_ticket"]["test"]


@pytest.mark.integration
def test_a_2_4_ticket_through_the_recipe_keeps_two_of_every_four(base_folder, tmp_path):
    # the standard profile's `omp/2:4` tickets: pattern nm drawn by the stage, then transferred
    stages = [
        {"draw_ticket": {**FAST, "scheme": "omp", "pattern": "nm", "n": 2, "m": 4, "sparsity": 0.5}},
        {"transfer": {**FAST, "steps": 2, "data": {**DIGITS, "classes": [0, 1, 2]}}},
    ]
    metrics, arts = _run(base_folder, stages, tmp_path)
    masks = Mask.load(arts["01-draw_ticket"].path / "masks.safetensors")
    groups = [m.movedim(1, -1).reshape(-1, 4) for m in masks.values() if m.dim() == 4 and m.shape[1] % 4 == 0]
    assert groups and all((g.sum(dim=1) == 2).all() for g in groups)
    assert metrics["02-transfer"]["mask_violations"] == 0
