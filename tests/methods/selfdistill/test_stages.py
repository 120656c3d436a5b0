"""The three stages end to end on tiny models and real zoo data, with the paper's invariants checked."""

import pytest
import torch

from tailor.methods.selfdistill import stages
from tailor.methods.selfdistill.config import SelfDistillConfig
from tailor.methods.selfdistill.objectives import SelfDistillObjective
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe
from tailor.zoo import models as model_zoo
from tailor.zoo.data import list_datasets

pytestmark = pytest.mark.integration


def _need(dataset: str):
    if not any(d.name == dataset and d.available() for d in list_datasets()):
        pytest.skip(f"{dataset} is not installed")


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a if k in b)


def _recipe(model, data, sd_extra=None):
    pt = {"steps": 2, "batch_size": 8, "head_warmup_steps": 1, "log_every": 1}
    return parse_recipe(
        {
            "name": "sd-test",
            "model": model,
            "data": data,
            "seeds": [0],
            "stages": [
                {"further_pretrain": pt},
                {"self_distill": {**pt, **(sd_extra or {})}},
                {"finetune": {"steps": 2, "batch_size": 8, "log_every": 1, "eval_batch_size": 32}},
            ],
        }
    )


def test_text_stages_end_to_end_student_from_original_weights(tmp_path, monkeypatch):
    _need("tweets2016")
    calls = []
    real_train = stages.train

    def recording_train(model, dataset, *, objective, teacher=None, **kw):
        record = {"objective": objective, "student_before": _state(model.base_model)}
        if teacher is not None:
            record["teacher_before"] = _state(teacher.base_model)
        report = real_train(model, dataset, objective=objective, teacher=teacher, **kw)
        record["student_after"] = _state(model.base_model)
        if teacher is not None:
            record["teacher_after"] = _state(teacher.base_model)
            record["teacher_grads"] = [p.grad for p in teacher.parameters()]
        calls.append(record)
        return report

    monkeypatch.setattr(stages, "train", recording_train)
    recipe = _recipe(
        "tiny-bert", {"name": "tweets2016", "train_size": 16, "test_size": 16, "max_length": 16}, {"rounds": 2}
    )
    result = run_recipe(recipe, tmp_path)

    base = _state(model_zoo.load("tiny-bert", "base"))
    fpt, sd1, sd2 = calls[:3]  # tiny-bert ships its MLM head, so no head warm-up runs
    assert not isinstance(fpt["objective"], SelfDistillObjective)
    assert isinstance(sd1["objective"], SelfDistillObjective) and isinstance(sd2["objective"], SelfDistillObjective)
    teacher_weights = fpt["student_after"]
    assert not _same(teacher_weights, base)  # further pre-training moved the weights
    for sd in (sd1, sd2):
        assert _same(sd["student_before"], base)  # every round restarts from θ_init ...
        assert not _same(sd["student_before"], sd["teacher_before"])  # ... not from the teacher
        assert _same(sd["teacher_before"], sd["teacher_after"])  # the teacher does not change
        assert all(g is None for g in sd["teacher_grads"])  # and gets no gradient
    assert _same(sd1["teacher_before"], teacher_weights)  # round 1 is taught by the FPT encoder
    assert _same(sd2["teacher_before"], sd1["student_after"])  # round 2 by round 1's student
    metrics = result.results["seeds"]["0"]
    assert len(metrics["02-self_distill"]["rounds"]) == 2
    assert 0 <= metrics["03-finetune"]["test"]["accuracy"] <= 1


def test_image_stages_end_to_end_with_masked_patch_decoder(tmp_path):
    _need("fashion-mnist")
    recipe = _recipe("tiny-vit", {"name": "fashion-mnist", "train_size": 16, "test_size": 16}, {"match": "prediction"})
    result = run_recipe(recipe, tmp_path)
    seed_dir = result.path / "seed-0"
    for stage in ("01-further_pretrain", "02-self_distill"):
        assert (seed_dir / stage / "model" / "mim_decoder.safetensors").is_file()
    metrics = result.results["seeds"]["0"]
    assert "head_warmup" in metrics["01-further_pretrain"]  # the pixel decoder is new: warmed up once ...
    assert (seed_dir / "01-further_pretrain" / "model" / stages.INITIAL_HEAD).is_file()
    assert "head_warmup" not in metrics["02-self_distill"]["rounds"][0]  # ... and the student reuses that φ_init
    assert 0 <= result.results["seeds"]["0"]["03-finetune"]["test"]["accuracy"] <= 1


def test_self_distill_without_teacher_says_what_to_do(tmp_path):
    class Ctx:
        previous = None

    with pytest.raises(ValueError, match="put a further_pretrain stage before it"):
        stages.run_self_distill(SelfDistillConfig(), Ctx())


def test_objective_choice_must_fit_the_model():
    cfg = SelfDistillConfig(objective="mlm")
    with pytest.raises(ValueError, match="use 'auto' or 'mim'"):
        stages.resolve_objective(cfg, "image", "dinov2")
    assert stages.resolve_objective(SelfDistillConfig(), "image", "vit_mae") == "mae"


def test_native_vitmae_stages_end_to_end(tmp_path):
    _need("fashion-mnist")
    from transformers import ViTImageProcessor, ViTMAEConfig, ViTMAEForPreTraining

    folder = tmp_path / "tiny-vitmae"
    torch.manual_seed(0)
    ViTMAEForPreTraining(
        ViTMAEConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            patch_size=8,
            image_size=32,
            decoder_hidden_size=8,
            decoder_num_hidden_layers=1,
            decoder_num_attention_heads=2,
            decoder_intermediate_size=16,
        )
    ).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    recipe = _recipe(str(folder), {"name": "fashion-mnist", "train_size": 16, "test_size": 16})
    result = run_recipe(recipe, tmp_path / "runs")
    metrics = result.results["seeds"]["0"]
    assert "head_warmup" not in metrics["01-further_pretrain"]  # the MAE decoder is pre-trained, not new
    assert metrics["02-self_distill"]["distance_to_init"] > 0
    assert 0 <= metrics["03-finetune"]["test"]["accuracy"] <= 1
