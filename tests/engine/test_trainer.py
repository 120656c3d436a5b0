import json

import pytest
import torch

from tailor.engine.hooks import capture
from tailor.engine.inputs import prepare
from tailor.engine.losses import CrossEntropy, weighted_sum
from tailor.engine.settings import TrainSettings
from tailor.engine.trainer import build_trainer, train
from tailor.zoo import models
from tailor.zoo.data import DataConfig, load_task


@pytest.fixture(scope="module")
def digits_inputs():
    cfg = DataConfig(name="digits", image_size=32, train_size=96, test_size=64)
    return prepare(load_task(cfg), "tiny-vit", cfg)


def _digits_trainer(model, digits_inputs, settings, out_dir):
    """build_trainer on the digits training split with cross-entropy (the optimizer and precision tests)."""
    return build_trainer(
        model,
        digits_inputs.train,
        settings=settings,
        out_dir=out_dir,
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
    )


def test_weighted_sum_golden():
    terms = {"a": torch.tensor(2.0), "b": torch.tensor(3.0), "c": torch.tensor(5.0)}
    assert weighted_sum(terms, {"a": 0.5, "b": 0.0}).item() == pytest.approx(0.5 * 2 + 0 * 3 + 1 * 5)


class HalfCE(CrossEntropy):
    """CE plus a second term, to check terms are weighted and logged separately."""

    def __init__(self):
        super().__init__()
        self.weights = {"ce": 1.0, "l2": 0.5}

    def terms(self, model, batch, teacher=None):
        out = super().terms(model, batch)
        out["l2"] = sum((p**2).sum() for p in model.classifier.parameters())
        return out


def test_train_reduces_loss_and_logs_terms(tmp_path, digits_inputs):
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    settings = TrainSettings(steps=30, lr=3e-3, batch_size=32, log_every=5)
    report = train(
        model,
        digits_inputs.train,
        settings=settings,
        out_dir=tmp_path,
        objective=HalfCE(),
        collator=digits_inputs.collator,
    )
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert report.steps == 30 and losses[-1] < losses[0]
    logged = [r for r in rows if "loss" in r]
    assert logged and all(r["loss"] == pytest.approx(r["loss/ce"] + 0.5 * r["loss/l2"], rel=1e-4) for r in logged)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_lr_overrides_and_frozen_params_make_groups(tmp_path, digits_inputs):
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    for p in model.vit.embeddings.parameters():
        p.requires_grad_(False)
    trainer = build_trainer(
        model,
        digits_inputs.train,
        settings=TrainSettings(steps=3, lr=1e-3, batch_size=16),
        out_dir=tmp_path,
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
        lr_overrides={r"^classifier\.": 0.5},
    )
    groups = trainer.create_optimizer().param_groups
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    decay_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert lr_of[id(model.classifier.weight)] == 0.5 and lr_of[id(model.classifier.bias)] == 0.5
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("classifier.")]
    assert body and all(lr_of[id(p)] == 1e-3 for p in body)
    assert decay_of[id(model.classifier.bias)] == 0.0 and decay_of[id(model.classifier.weight)] == 0.01
    assert not any(id(p) in lr_of for p in model.vit.embeddings.parameters())  # frozen: not optimised


def test_frozen_teacher_and_frozen_params_stay_unchanged(tmp_path, digits_inputs):
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    for p in model.vit.embeddings.parameters():
        p.requires_grad_(False)
    frozen = model.vit.embeddings.patch_embeddings.projection.weight.clone()
    teacher = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    train(
        model,
        digits_inputs.train,
        settings=TrainSettings(steps=3, lr=1e-3, batch_size=16),
        out_dir=tmp_path,
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
        teacher=teacher,
    )
    assert torch.equal(frozen, model.vit.embeddings.patch_embeddings.projection.weight)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_gradient_accumulation_averages_instead_of_summing(tmp_path, digits_inputs):
    """Two micro-batches of 8 must give the gradient of one batch of 16 (same samples, same order)."""
    norms = {}
    for accum, batch in ((1, 16), (2, 8)):
        torch.manual_seed(0)
        model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
        settings = TrainSettings(steps=1, lr=1e-3, batch_size=batch, grad_accum=accum, log_every=1, max_grad_norm=None)
        out = tmp_path / f"accum{accum}"
        train(
            model,
            digits_inputs.train,
            settings=settings,
            out_dir=out,
            objective=CrossEntropy(),
            collator=digits_inputs.collator,
        )
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        norms[accum] = next(r["grad_norm"] for r in rows if "grad_norm" in r)
    assert norms[2] == pytest.approx(norms[1], rel=1e-3)


def test_resume_continues_from_last_checkpoint(tmp_path, digits_inputs):
    settings = TrainSettings(steps=4, lr=1e-3, batch_size=16, save_every=2, log_every=1)
    torch.manual_seed(0)
    model = models.load("tiny-vit", "classifier", num_labels=10)
    first = train(
        model,
        digits_inputs.train,
        settings=settings.model_copy(update={"steps": 2}),
        out_dir=tmp_path,
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
    )
    assert first.resumed_from is None and (tmp_path / "checkpoints" / "checkpoint-2").is_dir()
    with open(tmp_path / "metrics.jsonl", "a") as f:  # a row logged after the checkpoint, before a crash
        f.write(json.dumps({"step": 3, "loss": 9.9}) + "\n")
    torn = tmp_path / "checkpoints" / "checkpoint-3"  # killed while saving: no trainer_state.json yet
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"partial")
    second = train(
        model,
        digits_inputs.train,
        settings=settings,
        out_dir=tmp_path,
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
    )
    assert second.resumed_from.endswith("checkpoint-2") and second.steps == 4
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # step 3 logged once, by the resumed run
    assert 9.9 not in [r["loss"] for r in rows if "loss" in r]


def test_capture_records_module_outputs_and_removes_hooks():
    model = models.load("tiny-bert", "base").eval()
    ids = torch.tensor([[2, 10, 11, 3]])
    reference = model(input_ids=ids, output_hidden_states=True).hidden_states[1]  # transformers adds its own hooks
    hooks_before = sum(len(m._forward_hooks) for m in model.modules())
    with capture(model, {"att1": "encoder.layer.1.attention.output", "l0": "encoder.layer.0"}) as got:
        out = model(input_ids=ids)
    assert got["att1"].shape == (1, 4, 32)
    assert torch.allclose(got["l0"], reference)
    assert out.last_hidden_state.shape == (1, 4, 32)
    assert sum(len(m._forward_hooks) for m in model.modules()) == hooks_before
    with pytest.raises(AttributeError):
        with capture(model, ["encoder.layer.9"]):
            pass
    assert sum(len(m._forward_hooks) for m in model.modules()) == hooks_before


def test_bf16_training_keeps_weights_and_optimizer_state_in_fp32(tmp_path, digits_inputs):
    """Trainer's bf16 is autocast: master weights, gradients and AdamW moments stay fp32 (VeRA's vectors too)."""
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    trainer = _digits_trainer(
        model, digits_inputs, TrainSettings(steps=2, lr=1e-3, batch_size=8, precision="bf16"), tmp_path
    )
    assert trainer.args.bf16 and not trainer.args.fp16
    trainer.train()
    states = [t for s in trainer.optimizer.state.values() for t in s.values() if t.is_floating_point() and t.dim()]
    assert states and all(t.dtype is torch.float32 for t in states)
    assert all(p.dtype is torch.float32 for p in model.parameters())


def _learning_rates(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["learning_rate"] for r in rows if "learning_rate" in r]


@pytest.mark.parametrize("unit, milestones", [("steps", [2, 4]), ("epochs", [0.5, 1.0])])
def test_multistep_scales_the_lr_by_gamma_after_each_milestone(tmp_path, digits_inputs, unit, milestones):
    """96 examples at batch 24 = 4 steps per epoch, so epochs [0.5, 1] are steps [2, 4]."""
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    settings = TrainSettings(
        steps=6,
        lr=0.1,
        batch_size=24,
        log_every=1,
        scheduler="multistep",
        milestones=milestones,
        milestones_in=unit,
        gamma=0.1,
        optimizer="sgd",
        momentum=0.9,
    )
    train(
        model,
        digits_inputs.train,
        settings=settings,
        out_dir=tmp_path,
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
    )
    # the lr each step ran at: steps 1-2 at 0.1, 3-4 at 0.01, 5-6 at 0.001 (hand-computed)
    assert _learning_rates(tmp_path) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_sgd_is_torch_sgd_with_momentum_nesterov_and_decay_groups(tmp_path, digits_inputs):
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    settings = TrainSettings(
        steps=1, lr=0.05, batch_size=16, optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=1e-4
    )
    trainer = _digits_trainer(model, digits_inputs, settings, tmp_path)
    opt = trainer.create_optimizer()
    assert type(opt) is torch.optim.SGD
    assert all(g["momentum"] == 0.9 and g["nesterov"] and g["lr"] == 0.05 for g in opt.param_groups)
    assert sorted({g["weight_decay"] for g in opt.param_groups}) == [0.0, 1e-4]  # no decay on biases/norms
    # one plain SGD step by hand: w1 = w0 - lr * (g + wd * w0) with momentum's first buffer = that gradient
    trainer2 = _digits_trainer(model, digits_inputs, settings.model_copy(update={"nesterov": False}), tmp_path / "b")
    w = model.classifier.weight
    w0 = w.detach().clone()
    w.grad = torch.ones_like(w)
    trainer2.create_optimizer().step()
    assert torch.allclose(w.detach(), w0 - 0.05 * (1 + 1e-4 * w0))


def test_bertadam_matches_hand_computed_steps_with_per_tensor_clipping():
    """BERT's Adam (KD-QAT's reference optimizer): no bias correction, each tensor clipped on its own."""
    from tailor.engine.optim import BertAdam

    a, b = torch.nn.Parameter(torch.tensor([1.0])), torch.nn.Parameter(torch.tensor([0.0, 0.0]))
    opt = BertAdam([{"params": [a, b], "lr": 0.1, "weight_decay": 0.0}], lr=0.1, max_grad_norm=1.0)
    a.grad, b.grad = torch.tensor([0.5]), torch.tensor([3.0, 4.0])  # norms 0.5 (kept) and 5 (clipped to 1)
    opt.step()
    # a: m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 2.5e-4, step = 0.05 / (0.0158114 + 1e-6) = 3.16208 (Adam with
    # bias correction would step 1.0); b's gradient is (0.6, 0.8) after its own clip, its update about
    # 3.1621 per element, while a global clip would have scaled a's gradient too (by 1 / 5.02)
    assert a.item() == pytest.approx(1 - 0.1 * 3.16208, abs=1e-5)
    assert b.tolist() == pytest.approx([-0.316208, -0.316218], abs=1e-5)
    assert opt.state[b]["exp_avg"].tolist() == pytest.approx([0.06, 0.08], abs=1e-6)
    a.grad, b.grad = torch.tensor([0.5]), torch.tensor([0.0, 0.0])
    opt.step()  # a: m = 0.095, v = 4.9975e-4, step = 0.095 / (0.0223551 + 1e-6) = 4.24941
    assert a.item() == pytest.approx(1 - 0.316208 - 0.1 * 4.24941, abs=1e-5)


def test_bertadam_turns_the_trainers_global_clip_off(tmp_path, digits_inputs):
    from tailor.engine.optim import BertAdam

    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    settings = TrainSettings(steps=1, lr=1e-3, batch_size=16, optimizer="bertadam", max_grad_norm=0.5)
    trainer = _digits_trainer(model, digits_inputs, settings, tmp_path)
    opt = trainer.create_optimizer()
    assert type(opt) is BertAdam and all(g["max_grad_norm"] == 0.5 for g in opt.param_groups)
    assert trainer.args.max_grad_norm == 0.0  # clipped per tensor by the optimizer, not globally as well


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"scheduler": "multistep"}, "needs milestones"),
        ({"scheduler": "multistep", "milestones": [3, 2]}, "increasing"),
        ({"scheduler": "multistep", "milestones": [2], "warmup_ratio": 0.1}, "no warm-up"),
        ({"milestones": [2]}, "multistep only"),
        ({"nesterov": True}, "optimizer: sgd"),
    ],
)
def test_bad_schedule_settings_say_what_to_do(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainSettings(**bad)


@pytest.mark.parametrize(
    "settings, n_train, expected",
    [
        ({"epochs": 3, "min_steps": 150}, 1000, 150),  # 3 x ceil(1000/32) = 96 steps: raised to 150
        ({"epochs": 3, "min_steps": 150}, 2000, None),  # 3 x 63 = 189 steps by epochs: left to Trainer
        ({"epochs": 3, "min_steps": 150, "steps": 40}, 1000, 40),  # steps wins
        ({"epochs": 3, "min_steps": 150, "grad_accum": 4}, 5000, 150),  # 3 x ceil(157/4) = 120
        ({"epochs": 3, "min_steps": 150, "grad_accum": 4}, 7000, None),  # 3 x ceil(219/4) = 165
        ({"epochs": 3}, 1000, None),
    ],
)
def test_min_steps_raises_an_epoch_count_that_gives_too_few_steps(settings, n_train, expected):
    from tailor.engine.trainer import planned_steps

    assert planned_steps(TrainSettings(batch_size=32, **settings), n_train) == expected


def test_min_steps_is_what_trainer_runs(tmp_path, digits_inputs):
    """96 examples at batch 32: one epoch is 3 steps; min_steps 5 makes it 5."""
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    report = train(
        model,
        digits_inputs.train,
        settings=TrainSettings(epochs=1, min_steps=5, batch_size=32),
        out_dir=tmp_path,
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
    )
    assert report.steps == 5


def test_eval_every_select_best_and_patience(tmp_path, digits_inputs):
    """tiny-vit barely learns digits in 40 steps: the validation score peaks early, so select best keeps that
    step's weights and patience 3 stops training three evaluations later."""
    from tailor.engine.metrics import evaluate

    torch.manual_seed(0)
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    settings = TrainSettings(
        steps=40, lr=3e-3, batch_size=16, eval_every=2, select="best", patience=3, scheduler="constant"
    )
    report = train(
        model,
        digits_inputs.train,
        settings=settings,
        out_dir=tmp_path,
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
        validation=digits_inputs,
    )
    history = report.selection["history"]
    best = max(history, key=lambda h: h["accuracy"])
    assert report.selection["best_step"] == best["step"] and report.selection["select"] == "best"
    after_best = [h for h in history if h["step"] > best["step"]]
    assert report.steps < 40  # stopped early, after exactly `patience` evaluations without improvement
    assert len(after_best) == 3 and all(h["accuracy"] <= best["accuracy"] for h in after_best)
    assert evaluate(model, digits_inputs, splits=("validation",))["validation"]["accuracy"] == best["accuracy"]


def test_eval_every_without_validation_or_patience_without_eval_every_is_refused(tmp_path, digits_inputs):
    from tailor.config import ConfigError

    with pytest.raises(ValueError, match="need eval_every"):
        TrainSettings(patience=2)
    with pytest.raises(ValueError, match="need eval_every"):
        TrainSettings(select="best")
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    with pytest.raises(ConfigError, match="no labelled validation split"):
        train(
            model,
            digits_inputs.train,
            settings=TrainSettings(steps=1, eval_every=1),
            out_dir=tmp_path,
            objective=CrossEntropy(),
            collator=digits_inputs.collator,
        )


def test_gradient_checkpointing_and_compile_reach_trainer(tmp_path, digits_inputs):
    """Checkpointing recomputes activations: same losses as without (no dropout in tiny-vit's forward)."""
    losses = {}
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
        out = tmp_path / f"ckpt{ckpt}"
        settings = TrainSettings(steps=3, lr=1e-3, batch_size=16, log_every=1, gradient_checkpointing=ckpt)
        trainer = _digits_trainer(model, digits_inputs, settings, out)
        trainer.train()
        assert model.is_gradient_checkpointing is ckpt
        losses[ckpt] = [
            json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line
        ]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
    compiled = build_trainer(
        models.load("tiny-vit", "classifier", num_labels=10),
        digits_inputs.train,
        settings=TrainSettings(compile=True),
        out_dir=tmp_path / "c",
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
    )
    assert compiled.args.torch_compile and not TrainSettings().compile


def test_console_shows_one_bar_with_loss_lr_and_throughput_and_no_log_dicts(tmp_path, digits_inputs, capfd):
    model = models.load("tiny-vit", "classifier", num_labels=digits_inputs.num_labels)
    train(
        model,
        digits_inputs.train,
        settings=TrainSettings(steps=3, lr=1e-3, batch_size=16, log_every=1),
        out_dir=tmp_path / "my-stage",
        objective=CrossEntropy(),
        collator=digits_inputs.collator,
    )
    err = capfd.readouterr().err
    assert "my-stage" in err and "loss=" in err and "lr=" in err and "samples/s=" in err
    assert "{'loss'" not in err and "'train_runtime'" not in err  # Trainer's dicts are not printed
    rows = [json.loads(line) for line in (tmp_path / "my-stage" / "metrics.jsonl").read_text().splitlines()]
    assert sum("loss" in r for r in rows) == 3  # the full log is still on disk
