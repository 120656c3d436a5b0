"""A NaN/inf loss or gradient stops the stage with a clear error (or, if asked, skips the step)."""

import json

import pytest
import torch

from tailor.engine.guards import NonFiniteError
from tailor.engine.inputs import prepare
from tailor.engine.losses import CrossEntropy
from tailor.engine.settings import TrainSettings
from tailor.engine.trainer import train
from tailor.zoo import models
from tailor.zoo.data import DataConfig, load_task


@pytest.fixture(scope="module")
def digits_inputs():
    cfg = DataConfig(name="digits", image_size=32, train_size=64, test_size=32)
    return prepare(load_task(cfg), "tiny-vit", cfg)


class PoisonedCE(CrossEntropy):
    """Cross-entropy whose loss is multiplied by NaN (or inf) on the given calls: a controlled divergence."""

    def __init__(self, bad_calls, value=float("nan")):
        super().__init__()
        self.bad_calls, self.value, self.calls = set(bad_calls), value, 0

    def terms(self, model, batch, teacher=None):
        out = super().terms(model, batch)
        self.calls += 1
        if self.calls in self.bad_calls:
            out["ce"] = out["ce"] * self.value
        return out


def _model(inputs):
    torch.manual_seed(0)
    return models.load("tiny-vit", "classifier", num_labels=inputs.num_labels)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_loss_stops_naming_the_step_and_causes(tmp_path, digits_inputs, value):
    settings = TrainSettings(steps=6, lr=1e-3, batch_size=16, log_every=1)
    with pytest.raises(NonFiniteError) as err:
        train(
            _model(digits_inputs),
            digits_inputs.train,
            settings=settings,
            out_dir=tmp_path,
            objective=PoisonedCE({3}, value),
            collator=digits_inputs.collator,
        )
    msg = str(err.value)
    assert "step 3" in msg and "learning rate" in msg and "precision" in msg and "non_finite: skip" in msg


def test_non_finite_gradient_with_finite_loss_stops(tmp_path, digits_inputs):
    model = _model(digits_inputs)
    model.classifier.weight.register_hook(lambda g: g * float("nan"))  # finite loss, NaN gradient
    with pytest.raises(NonFiniteError, match="gradient .* step 1"):
        train(
            model,
            digits_inputs.train,
            settings=TrainSettings(steps=3, lr=1e-3, batch_size=16),
            out_dir=tmp_path,
            objective=CrossEntropy(),
            collator=digits_inputs.collator,
        )


def test_skip_drops_the_bad_steps_counts_them_and_keeps_weights_finite(tmp_path, digits_inputs):
    model = _model(digits_inputs)
    settings = TrainSettings(steps=6, lr=1e-3, batch_size=16, log_every=1, non_finite="skip")
    report = train(
        model,
        digits_inputs.train,
        settings=settings,
        out_dir=tmp_path,
        objective=PoisonedCE({2, 5}),
        collator=digits_inputs.collator,
    )
    assert report.skipped_steps == 2 and report.steps == 6
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.isfinite(torch.tensor(report.train_loss))


def test_huge_learning_rate_recipe_fails_with_exit_2_and_no_done_json(tmp_path, capsys):
    from tailor.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: nan\nmodel: tiny-vit\ndata: {name: digits, image_size: 32, train_size: 64, test_size: 32}\n"
        "stages:\n  - finetune: {steps: 20, lr: 1.0e+6, batch_size: 16, max_grad_norm: null}\n"
    )
    assert main(["run", str(recipe), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and "learning rate" in err and "Traceback" not in err
    assert not list((tmp_path / "runs").rglob("done.json"))
    (failed,) = (tmp_path / "runs").rglob("failed.json")
    assert "non-finite" in json.loads(failed.read_text())["error"]
