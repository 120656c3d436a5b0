"""The `finetune` stage: load the previous model with a classifier head, train it, score it."""
from __future__ import annotations

from ...artifacts import save_hf
from ...engine.losses import CrossEntropy
from ...engine.metrics import evaluate
from ...engine.trainer import train
from ...stages import StageContext, StageResult
from ...zoo.models import HEAD_PARAM_PATTERN
from .regularizers import regularize
from .config import FinetuneConfig



def run_finetune(cfg: FinetuneConfig, ctx: StageContext) -> StageResult:
    data = ctx.inputs()
    model = ctx.load(ctx.source(), head="classifier", num_labels=data.num_labels)
    objective, callbacks = regularize(cfg.regularizer, model, CrossEntropy(cfg.label_smoothing))
    report = train(
        model, data.train, settings=cfg, out_dir=ctx.stage_dir, objective=objective, callbacks=callbacks,
        collator=data.collator, validation=data, lr_overrides={HEAD_PARAM_PATTERN: cfg.head_lr} if cfg.head_lr else None, seed=ctx.seed,
    )
    metrics = evaluate(model, data, cfg.eval_batch_size, precision=cfg.precision)
    artifact = save_hf(model, ctx.stage_dir / "model", ctx.recipe.model, head="classifier",
                       label_names=ctx.task().label_names)
    return StageResult(artifact, {**metrics, "train": report.as_dict()})
