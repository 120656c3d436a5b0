"""The `finetune` stage: load the previous model with a classifier head, train it, score it."""

from __future__ import annotations

import torch
from torch import nn

from ...artifacts import save_hf
from ...engine.losses import CrossEntropy
from ...engine.metrics import evaluate
from ...engine.trainer import train
from ...stages import StageContext, StageResult
from ...zoo.models import HEAD_PARAM_PATTERN
from .config import FinetuneConfig
from .regularizers import regularize


@torch.no_grad()
def reinit_pooler(model: nn.Module) -> None:
    """Draw every pooler's dense layer anew as BERT initialises it (normal, std initializer_range; zero
    bias), from the current RNG state; a model without a pooler is left as it is."""
    std = getattr(model.config, "initializer_range", 0.02)
    for name, module in model.named_modules():
        if name.split(".")[-1] == "pooler" and isinstance(getattr(module, "dense", None), nn.Linear):
            module.dense.weight.normal_(0.0, std)
            module.dense.bias.zero_()


def run_finetune(cfg: FinetuneConfig, ctx: StageContext) -> StageResult:
    data = ctx.inputs()
    torch.manual_seed(ctx.seed)  # the new head's draw depends on the seed alone, not on what ran before it
    model = ctx.load(ctx.source(), head="classifier", num_labels=data.num_labels)
    if cfg.pooler == "reinit":
        reinit_pooler(model)
    objective, callbacks = regularize(cfg.regularizer, model, CrossEntropy(cfg.label_smoothing))
    report = train(
        model,
        data.train,
        settings=cfg,
        out_dir=ctx.stage_dir,
        objective=objective,
        callbacks=callbacks,
        collator=data.collator,
        validation=data,
        lr_overrides={HEAD_PARAM_PATTERN: cfg.head_lr} if cfg.head_lr else None,
        seed=ctx.seed,
    )
    metrics = evaluate(model, data, cfg.eval_batch_size, precision=cfg.precision)
    artifact = save_hf(
        model, ctx.stage_dir / "model", ctx.recipe.model, head="classifier", label_names=ctx.task().label_names
    )
    return StageResult(artifact, {**metrics, "train": report.as_dict()})
