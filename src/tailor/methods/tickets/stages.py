"""Stages robust_pretrain -> draw_ticket -> transfer, and the "ticket" artifact format.

A ticket artifact is a ``save_pretrained`` folder (weights already masked) plus ``masks.safetensors``
and ``sparsity.json``; loading it applies the masks, and ``transfer`` keeps them fixed. Any folder
holding ``masks.safetensors`` is treated as a ticket, so a ticket folder can also be a recipe's model.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoConfig, ViTImageProcessor

from ...artifacts import Artifact, save_hf
from ...dist import on_main_process
from ...engine.inputs import ImageCollator, ModelInputs, prepare
from ...engine.metrics import evaluate
from ...engine.trainer import train
from ...files import atomic_write_text
from ...stages import StageContext, StageResult
from ...zoo.data import DataConfig, load_task
from ...zoo.models import HEAD_PARAM_PATTERN, load_folder
from .attacks import PixelSpace, robust_accuracy
from .config import AttackConfig, DrawTicketConfig, RobustPretrainConfig, TransferConfig
from .masks import Mask, apply_masks
from .strategies import get_strategy
from .training import AdversarialCE, MaskCallback, freeze_all_but, freeze_batchnorm, head_parameters, reset_head

MASKS_FILE = "masks.safetensors"


# ----------------------------------------------------------------------------- shared helpers
def _inputs(ctx: StageContext, data: DataConfig | None) -> ModelInputs:
    """[0, 1]-pixel inputs for the stage's own task (default: the recipe's), cached per seed."""
    cfg = data or ctx.recipe.data
    key = "tickets-inputs-" + cfg.model_dump_json()
    if key not in ctx._shared:
        task = load_task(cfg, ctx.seed)
        if task.modality != "image":
            raise ValueError(f"tickets stages train on images (attacks act on pixels); '{cfg.name}' is {task.modality}")
        ctx._shared[key] = prepare(task, ctx.recipe.model, cfg, normalize=False)
    return ctx._shared[key]


def _normalized(inputs: ModelInputs) -> ModelInputs:
    """The inputs as the bare model (no PixelSpace) sees them: normalised pixels, for scoring."""
    return replace(inputs, collator=ImageCollator(inputs.image, normalize=True))


def _scores(
    model: torch.nn.Module,
    inputs: ModelInputs,
    batch_size: int,
    attack: AttackConfig | None,
    robust_size: int,
    seed: int,
    precision: str = "auto",
) -> dict:
    """Engine metrics on validation/test, plus clean/robust accuracy on (a prefix of) test under ``attack``."""
    metrics = evaluate(model, _normalized(inputs), batch_size, precision=precision)
    if attack is not None:
        test = inputs.test.select(range(min(robust_size, len(inputs.test))))
        device = next(model.parameters()).device
        batches = (
            inputs.collator([test[i] for i in range(s, min(s + batch_size, len(test)))])
            for s in range(0, len(test), batch_size)
        )
        net = PixelSpace(model, inputs.image.mean, inputs.image.std).to(device)
        pairs = ((b["pixel_values"].to(device), b["labels"].to(device)) for b in batches)
        out = robust_accuracy(net, pairs, attack, seed)
        metrics["test"]["robust_accuracy"] = out["robust_accuracy"]
        metrics["test"]["attacked_n"] = len(test)
    return metrics


def _objective(attack: AttackConfig | None, inputs: ModelInputs, seed: int) -> AdversarialCE:
    return AdversarialCE(attack, inputs.image.mean, inputs.image.std, seed)


def _source(ctx: StageContext, stage_id: str | None) -> Artifact:
    if stage_id is None:
        return ctx.source()
    if stage_id not in ctx.history:
        raise ValueError(
            f"source '{stage_id}' is not an earlier stage of this recipe (earlier: {', '.join(ctx.history) or 'none'})"
        )
    return ctx.history[stage_id]


def _stored_num_labels(artifact: Artifact) -> int:
    return AutoConfig.from_pretrained(artifact.path).num_labels


def _save_preprocessor(folder: Path, inputs: ModelInputs) -> None:
    """Record size and normalisation, so the folder works as a recipe's ``model`` (tailor.zoo.models.image_spec)."""
    spec = inputs.image
    ViTImageProcessor(
        size={"height": spec.size, "width": spec.size}, image_mean=list(spec.mean), image_std=list(spec.std)
    ).save_pretrained(folder)


def ticket_masks(artifact: Artifact) -> Mask | None:
    path = Path(artifact.path) / MASKS_FILE
    return Mask.load(path) if path.is_file() else None


def load_ticket(artifact: Artifact, head: str, num_labels: int | None) -> torch.nn.Module:
    """Format loader for "ticket": the model with its masks applied (head masks skipped if the head is new)."""
    model = load_folder(artifact.path, head, num_labels)
    masks = ticket_masks(artifact) or Mask()
    names = dict(model.named_parameters())
    apply_masks(model, {k: m for k, m in masks.items() if k in names and names[k].shape == m.shape})
    return model


def load_sliced_ticket(artifact: Artifact, head: str, num_labels: int | None) -> torch.nn.Module:
    """Format ``ticket_sliced``: a transformer ticket whose pruned heads and FFN neurons were removed."""
    if head != "classifier":
        raise ValueError(
            f"{artifact.path}: an exported (sliced) ticket loads with its classifier head only, not '{head}'"
        )
    from .transformer_structured import load_sliced

    return load_sliced(artifact.path, num_labels)


def save_ticket(
    model: torch.nn.Module, masks: Mask, folder: Path, ctx: StageContext, inputs: ModelInputs, meta: dict
) -> tuple[Artifact, dict]:
    report = masks.report()
    art = save_hf(
        model,
        folder,
        ctx.recipe.model,
        head="classifier",
        label_names=ctx.task().label_names,
        meta={**meta, "sparsity": report["sparsity"]},
        format="ticket",
    )

    def write_ticket_files() -> None:
        masks.save(folder / MASKS_FILE, meta)
        atomic_write_text(folder / "sparsity.json", json.dumps(report, indent=2))
        _save_preprocessor(folder, inputs)

    on_main_process(write_ticket_files)
    return art, report


def _mask_violations(model: torch.nn.Module, masks: Mask) -> int:
    params = dict(model.named_parameters())
    return int(sum((params[k].detach()[~m.to(torch.bool)] != 0).sum() for k, m in masks.items() if k in params))


# ----------------------------------------------------------------------------- stages
def run_robust_pretrain(cfg: RobustPretrainConfig, ctx: StageContext) -> StageResult:
    """PGD adversarial training (or natural training if ``attack`` is null) on the source task."""
    inputs = _inputs(ctx, cfg.data)
    model = ctx.load(ctx.source(), head="classifier", num_labels=inputs.num_labels)
    report = train(
        model,
        inputs.train,
        settings=cfg,
        out_dir=ctx.stage_dir,
        objective=_objective(cfg.attack, inputs, ctx.seed),
        collator=inputs.collator,
        validation=_normalized(inputs),
        seed=ctx.seed,
    )
    metrics = _scores(
        model, inputs, cfg.eval_batch_size, cfg.eval_attack, cfg.robust_eval_size, ctx.seed, cfg.precision
    )
    art = save_hf(
        model,
        ctx.stage_dir / "model",
        ctx.recipe.model,
        head="classifier",
        label_names=ctx.task().label_names,
        meta={"attack": cfg.attack.model_dump() if cfg.attack else None},
    )
    on_main_process(lambda: _save_preprocessor(art.path, inputs))
    return StageResult(art, {**metrics, "train": report.as_dict()})


def run_draw_ticket(cfg: DrawTicketConfig, ctx: StageContext) -> StageResult:
    """Draw a ticket from the incoming model with the strategy ``cfg.scheme`` names (``strategies.py``)."""
    strategy = get_strategy(cfg.scheme)
    source = _source(ctx, cfg.source)
    inputs = _inputs(ctx, cfg.data)
    num_labels = inputs.num_labels if strategy.new_head else _stored_num_labels(source)
    model = ctx.load(source, head="classifier", num_labels=num_labels)
    reports: list[dict] = []

    def fit(m, mask=None, *, round=None, adversarial=False, head_lr=None) -> dict:
        if inputs.num_labels != num_labels:
            raise ValueError(
                f"{cfg.scheme} trains the source head ({num_labels} labels) but draw_ticket.data has "
                f"{inputs.num_labels}; point data at the source task"
            )
        out_dir = ctx.stage_dir if round is None else ctx.stage_dir / f"round-{round}"
        rep = train(
            m,
            inputs.train,
            settings=cfg,
            out_dir=out_dir,
            objective=_objective(cfg.attack if adversarial else None, inputs, ctx.seed + (round or 0)),
            collator=inputs.collator,
            callbacks=[MaskCallback(m, mask)] if mask else [],
            lr_overrides={HEAD_PARAM_PATTERN: head_lr} if head_lr else None,
            seed=ctx.seed,
        )
        reports.append(rep.as_dict())
        return reports[-1]

    masks = strategy.prune(model, ticket_masks(source), cfg, fit)
    metrics = strategy.summary(reports)
    art, report = save_ticket(
        model,
        masks,
        ctx.stage_dir / "model",
        ctx,
        inputs,
        {"scheme": cfg.scheme, "pattern": cfg.pattern, "target_sparsity": cfg.sparsity},
    )
    if strategy.new_head:  # the learned mask with its head, on the task it was learned for
        metrics.update(_scores(model, inputs, cfg.eval_batch_size, None, 0, ctx.seed, cfg.precision))
    metrics.update(sparsity=report["sparsity"], dead_layers=len(report["dead_layers"]))
    return StageResult(art, metrics)


def run_transfer(cfg: TransferConfig, ctx: StageContext) -> StageResult:
    """Fine-tune (mask fixed) or linearly evaluate (frozen ticket, BN in eval) on the downstream task."""
    source = _source(ctx, cfg.source)
    inputs = _inputs(ctx, cfg.data)
    model = ctx.load(source, head="classifier", num_labels=inputs.num_labels)
    masks = ticket_masks(source)
    if masks:
        apply_masks(model, masks)
    if cfg.new_head:
        reset_head(model)
    callbacks, hooks = [], []
    if cfg.protocol == "linear":
        freeze_all_but(model, head_parameters(model))
        hooks = freeze_batchnorm(model)
    elif masks:
        callbacks.append(MaskCallback(model, masks))
    report = train(
        model,
        inputs.train,
        settings=cfg,
        out_dir=ctx.stage_dir,
        objective=_objective(None, inputs, ctx.seed),
        collator=inputs.collator,
        callbacks=callbacks,
        validation=_normalized(inputs),
        lr_overrides={HEAD_PARAM_PATTERN: cfg.head_lr} if cfg.head_lr else None,
        seed=ctx.seed,
    )
    for h in hooks:
        h.remove()
    model.requires_grad_(True)
    metrics = _scores(
        model, inputs, cfg.eval_batch_size, cfg.eval_attack, cfg.robust_eval_size, ctx.seed, cfg.precision
    )
    meta = {"protocol": cfg.protocol, "source": str(source.path)}
    if masks:
        metrics["mask_violations"] = _mask_violations(model, masks)
        art, report_sp = save_ticket(model, masks, ctx.stage_dir / "model", ctx, inputs, meta)
        metrics["sparsity"] = report_sp["sparsity"]
    else:
        art = save_hf(
            model,
            ctx.stage_dir / "model",
            ctx.recipe.model,
            head="classifier",
            label_names=ctx.task().label_names,
            meta=meta,
        )
        _save_preprocessor(art.path, inputs)
        metrics["sparsity"] = 0.0
    return StageResult(art, {**metrics, "train": report.as_dict()})
