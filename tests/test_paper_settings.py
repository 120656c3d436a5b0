"""The `paper` profiles carry the papers' own hyperparameters (docs/reproductions/paper_settings.md):
each value pinned here is cited to its table, so a change to a profile that drifts from the paper fails."""

import importlib

import pytest


def _stages(method: str) -> dict[tuple[str, str], dict]:
    """(recipe name, stage name) -> the stage's settings, over every run of ``method``'s paper profile."""
    runs = importlib.import_module(f"tailor.methods.{method}.repro").planned_runs("paper")
    return {(r.recipe["name"], name): cfg for r in runs for stage in r.recipe["stages"] for name, cfg in stage.items()}


@pytest.mark.parametrize(
    ("task", "epochs", "head_lr", "vera_lr", "lora_lr"),
    # VeRA Table 8 (App. A), RoBERTa-base: epochs, Learning Rate (Head), Learning Rate (VeRA);
    # Hu et al. (2022) Table 9, RoBERTa-base LoRA: learning rate
    [("sst2", 60, 4e-3, 4e-3, 5e-4), ("cola", 80, 1e-2, 1e-2, 4e-4)],
)
def test_vera_glue_arms_use_table_8(task, epochs, head_lr, vera_lr, lora_lr):
    stages = _stages("vera")
    vera = stages[(f"vera-roberta-base-{task}-vera-r1024", "vera")]
    assert (vera["r"], vera["epochs"], vera["lr"], vera["head_lr"]) == (1024, epochs, vera_lr, head_lr)
    assert (vera["batch_size"], vera["warmup_ratio"]) == (64, 0.06)  # Table 8: batch 64, warm-up ratio 0.06
    assert vera["select"] == "best"  # Sec. 4.1: the best epoch of each run
    for arm in ("full", "lora-r8"):  # the baselines share the task's epochs and head rate
        ((name, cfg),) = [(k, v) for k, v in stages.items() if k[0] == f"vera-roberta-base-{task}-{arm}"]
        assert (cfg["epochs"], cfg["head_lr"], cfg["batch_size"]) == (epochs, head_lr, 64), name
        assert (cfg["select"], cfg["eval_every"]) == ("best", vera["eval_every"]), name
    lora = stages[(f"vera-roberta-base-{task}-lora-r8", "lora")]
    assert (lora["r"], lora["alpha"], lora["lr"]) == (8, 8, lora_lr)  # Hu et al. Table 9: r_q = r_v = 8, alpha 8


def test_vera_vit_arms_use_table_11():
    # VeRA Table 11, ViT-Base on CIFAR100: LR / LR-Head of Full, LoRA and VeRA
    expected = {"full": ("finetune", 4e-5, 4e-3), "lora-r8": ("lora", 4e-3, 4e-3), "vera-r256": ("vera", 2e-2, 4e-3)}
    stages = _stages("vera")
    for arm, (stage, lr, head_lr) in expected.items():
        cfg = stages[(f"vera-vit-base-patch16-224-in21k-cifar100-10shot-{arm}", stage)]
        assert (cfg["lr"], cfg["head_lr"], cfg["epochs"]) == (lr, head_lr, 10), arm


def test_vera_stage_defaults_are_a_table_8_pair():
    from tailor.methods.vera.config import VeraConfig

    cfg = VeraConfig()
    # Table 8, RoBERTa-base MRPC and QNLI: head 4e-3, VeRA 1e-2; d_init 0.1, Kaiming uniform
    assert (cfg.lr, cfg.head_lr, cfg.d_initial, cfg.projection_init) == (1e-2, 4e-3, 0.1, "kaiming_uniform")


@pytest.mark.parametrize(("task", "batch", "eval_every"), [("cola", 16, 50), ("sst2", 32, 100)])
def test_kdqat_students_use_the_reference_scripts(task, batch, eval_every):
    # the paper's text gives no training settings; the authors' main.py: lr 2e-5, 3 epochs, per-task batch and
    # eval interval, max length 64 (CoLA, SST-2), the best dev score kept
    runs = importlib.import_module("tailor.methods.kdqat.repro").planned_runs("paper")
    students = [r for r in runs if r.recipe["name"].endswith(f"-{task}") and "-fp-" not in r.recipe["name"]]
    assert len(students) == 13
    for run in students:
        ((name, cfg),) = run.recipe["stages"][0].items()
        assert name == "qat_distill"
        assert (cfg["lr"], cfg["epochs"], cfg["warmup_ratio"], cfg["select"]) == (2e-5, 3, 0.1, "best")
        assert (cfg["batch_size"], cfg["eval_every"], run.recipe["data"]["max_length"]) == (batch, eval_every, 64)


def test_selfdistill_uses_table_9():
    stages = _stages("selfdistill")
    # Table 9 (App. E), RoBERTa: (further) pre-training lr 1e-4, batch 128, 100 epochs; fine-tuning lr 2e-5,
    # batch 16, 10 epochs; weight decay 0.01
    for stage in ("further_pretrain", "self_distill"):
        cfg = stages[("sd-chemprot-all-self-distill", stage)]
        assert (cfg["lr"], cfg["batch_size"], cfg["epochs"], cfg["weight_decay"]) == (1e-4, 128, 100, 0.01)
    cfg = stages[("sd-chemprot-all-finetune", "finetune")]
    assert (cfg["lr"], cfg["batch_size"], cfg["epochs"], cfg["weight_decay"]) == (2e-5, 16, 10, 0.01)
    # Table 9, ViT: pre-training lr 1.5e-4, batch 64, 20,000 steps; fine-tuning lr 1e-4, batch 32, 10,000 steps
    cfg = stages[("sd-cifar100-10000-self-distill", "self_distill")]
    assert (cfg["lr"], cfg["batch_size"], cfg["steps"], cfg["weight_decay"]) == (1.5e-4, 64, 20_000, 0.01)
    cfg = stages[("sd-cifar100-10000-finetune", "finetune")]
    assert (cfg["lr"], cfg["batch_size"], cfg["steps"], cfg["weight_decay"]) == (1e-4, 32, 10_000, 0.01)


def test_selfdistill_stage_defaults_are_the_papers():
    from tailor.methods.selfdistill.config import SelfDistillConfig

    cfg = SelfDistillConfig()
    # Table 9: one round, linear decay, weight decay 0.01, lr 1e-4 (RoBERTa); Sec. 6: λ = 1; the authors'
    # scripts: AdamW (0.9, 0.95), no clipping, no warm-up
    assert (cfg.rounds, cfg.scheduler, cfg.weight_decay, cfg.lr, cfg.mae_weight) == (1, "linear", 0.01, 1e-4, 1.0)
    assert (cfg.adam_betas, cfg.max_grad_norm, cfg.warmup_ratio) == ((0.9, 0.95), None, 0.0)


def test_tickets_transfer_uses_sec_3a():
    # Fu et al. Sec. III-A, fine-tuning settings: SGD, 150 epochs, batch 64, momentum 0.9, weight decay 1e-4,
    # lr x0.1 at epochs 50 and 100
    runs = importlib.import_module("tailor.methods.tickets.repro").planned_runs("paper")
    transfers = [cfg for r in runs for stage in r.recipe["stages"] for name, cfg in stage.items() if name == "transfer"]
    assert len(transfers) > len(runs)  # every transfer of every pretraining, not one per recipe
    for cfg in transfers:
        got = (cfg["optimizer"], cfg["epochs"], cfg["batch_size"], cfg["momentum"], cfg["weight_decay"])
        assert got == ("sgd", 150, 64, 0.9, 1e-4)
        assert (cfg["scheduler"], cfg["milestones"], cfg["gamma"]) == ("multistep", [50.0, 100.0], 0.1)
