"""`tailor repro <method> --profile P --plan`: every method's runs resolve into valid recipes, and the
cost estimate counts steps as hand-computed; nothing is loaded (the paper's hub models are absent here)."""

import pytest

from tailor.cli import main
from tailor.plan import PlannedRun, estimate

METHODS = ("selfdistill", "kdqat", "vera", "tickets")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("profile", ("quick", "full", "paper"))
def test_plan_resolves_for_every_method(method, profile, capsys):
    assert main(["repro", method, "--profile", profile, "--plan"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"tailor repro {method} --profile {profile}: ") and "total: about" in out


def test_paper_profiles_use_the_papers_models():
    for method, model in (
        ("selfdistill", "FacebookAI/roberta-base"),
        ("selfdistill", "facebook/vit-mae-base"),
        ("kdqat", "google-bert/bert-base-uncased"),
        ("vera", "FacebookAI/roberta-base"),
    ):
        import importlib

        runs = importlib.import_module(f"tailor.methods.{method}.repro").planned_runs("paper")
        assert any(r.recipe["model"] == model for r in runs), (method, model)


def test_estimate_counts_steps_and_passes():
    recipe = {
        "name": "x",
        "model": "m",
        "data": {"train_size": 1000},
        "seeds": [0, 1],
        "stages": [
            {"further_pretrain": {"epochs": 2, "batch_size": 100}},
            {"self_distill": {"steps": 10, "batch_size": 100}},
            {"robust_pretrain": {"steps": 5, "batch_size": 10, "attack": {"steps": 3}}},
        ],
    }
    cost = estimate(PlannedRun(recipe, 0, 1e12))
    assert cost["steps_per_seed"] == {"01-further_pretrain": 20, "02-self_distill": 10, "03-robust_pretrain": 5}
    # FLOPs per seed: 20·100·3 + 10·100·7 + 5·10·3·4 = 6000 + 7000 + 600 = 13600 forwards of 1e12
    assert cost["gpu_hours"] == pytest.approx(2 * 13600 * 1e12 / 1e14 / 3600)


def test_device_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["repro", "kdqat", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "--device cuda" in capsys.readouterr().err


def test_an_unknown_profile_is_a_config_error_naming_it(capsys):
    assert main(["repro", "kdqat", "--profile", "nonesuch", "--plan"]) == 2
    assert "unknown profile 'nonesuch'" in capsys.readouterr().err
