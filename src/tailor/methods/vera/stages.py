"""The `vera` and `lora` stages: adapt the previous stage's model with peft, train, score, save.

The source model is loaded through ``ctx.source()`` and the artifact format registry, so the
adapter goes on whatever the previous stage produced (a fine-tuned model, a self-distilled
encoder, a ternary student, a pruned ticket). The saved artifact is a peft adapter folder (format
``peft``) that plain ``peft.PeftModel.from_pretrained`` loads onto the same base.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ...artifacts import Artifact, load_model
from ...config import ConfigError
from ...dist import on_main_process
from ...engine.losses import CrossEntropy
from ...engine.metrics import evaluate
from ...engine.trainer import train
from ...integrity import weights_fingerprint
from ...stages import StageContext, StageResult
from ...zoo.models import resolve
from .adapters import (
    HEAD_PARAM_PATTERN,
    adapter_bytes,
    build_lora,
    build_vera,
    check_base,
    count_parameters,
    load_adapter,
    save_adapter,
)
from .config import LoraConfig, VeraConfig
from .lm import NextTokenLoss, perplexity, prepare_lm

FORMAT = "peft"


def run_vera(cfg: VeraConfig, ctx: StageContext) -> StageResult:
    return _run_adapter(cfg, ctx, build_vera)


def run_lora(cfg: LoraConfig, ctx: StageContext) -> StageResult:
    return _run_adapter(cfg, ctx, build_lora)


def _run_adapter(cfg, ctx: StageContext, build) -> StageResult:
    source = ctx.source()
    if cfg.task == "classify":
        data = ctx.inputs()
        torch.manual_seed(ctx.seed)  # the new head's draw depends on the seed alone, as in `finetune`
        base = ctx.load(source, head="classifier", num_labels=data.num_labels)
        objective, head, labels = CrossEntropy(), "classifier", ctx.task().label_names
    else:
        if "lm_inputs" not in ctx._shared:  # tokenized once per seed, like ctx.inputs()
            ctx._shared["lm_inputs"] = prepare_lm(ctx.task(), ctx.recipe.model, ctx.recipe.data.max_length)
        data = ctx._shared["lm_inputs"]
        base = ctx.load(source, head="causal_lm")
        objective, head, labels = NextTokenLoss(), "causal_lm", []
    model = build(base, cfg)
    counts = count_parameters(model)
    report = train(
        model,
        data.train,
        settings=cfg,
        out_dir=ctx.stage_dir,
        objective=objective,
        collator=data.collator,
        lr_overrides={HEAD_PARAM_PATTERN: cfg.head_lr} if cfg.head_lr else None,
        validation=data if cfg.task == "classify" else None,
        seed=ctx.seed,
    )
    if cfg.task == "classify":
        metrics = evaluate(model, data, cfg.eval_batch_size, precision=cfg.precision)
    else:
        metrics = {
            s: perplexity(model, getattr(data, s), data.collator, cfg.eval_batch_size) for s in ("validation", "test")
        }
    adapter_dir = ctx.stage_dir / "model"
    on_main_process(lambda: save_adapter(model, adapter_dir))
    sizes = adapter_bytes(adapter_dir)
    base = base_record(source, adapter_dir, original=ctx.previous is None)
    artifact = Artifact(adapter_dir, ctx.recipe.model, FORMAT, head, labels, base=base).save()
    return StageResult(artifact, {**metrics, "params": counts, "bytes": sizes, "train": report.as_dict()})


def base_record(source: Artifact, adapter_dir: Path, original: bool) -> dict:
    """How to find the base again, wherever the run folder is moved: the original pretrained model
    by its zoo name or hub id, an earlier stage's output by its path relative to the adapter."""
    record = {
        "format": source.format,
        "model_name": source.model_name,
        "head": source.head,
        "label_names": source.label_names,
        "meta": source.meta,
        "weights_sha256": weights_fingerprint(source.path),
    }
    if not original:
        record["path"] = os.path.relpath(Path(source.path).resolve(), Path(adapter_dir).resolve())
    return record


def base_artifact(adapter: Artifact) -> Artifact:
    """The base model an adapter artifact was trained on."""
    record = adapter.base
    if record is None:
        raise ConfigError(
            f"{adapter.path}: format {adapter.format!r} is not an adapter saved by the vera or lora stage"
        )
    path = (adapter.path / record["path"]).resolve() if "path" in record else resolve(record["model_name"])
    return Artifact(
        Path(path), record["model_name"], record["format"], record["head"], record["label_names"], meta=record["meta"]
    )


def load_peft_artifact(artifact: Artifact, head: str, num_labels: int | None):
    """Base (through its own format loader) + adapter. Merged into a plain model when the base is a
    plain ``hf`` model; kept unmerged on any other format (a ternary or pruned base would lose its
    structure if the dense delta W were folded into it)."""
    base_art = base_artifact(artifact)
    check_base(artifact, base_art)
    base = load_model(base_art, artifact.head or head, artifact.num_labels or num_labels)
    model = load_adapter(base, artifact.path)
    return model.merge_and_unload() if base_art.format == "hf" else model
