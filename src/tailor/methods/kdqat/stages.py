"""Stages ``qat_distill`` (finetuned FP teacher → ternary student) and ``export`` (packed file).

Artifacts: ``qat_distill`` saves the student's latent full-precision weights with ``save_pretrained``
as format ``kdqat_student`` (loading re-applies the quantizers of its settings, a `QuantConfig`, so
training can continue); ``export`` writes the packed file as format ``kdqat`` (an inference model
with frozen quantized weights) through `pack_student`, the one packing path (`tailor export` and the
ONNX export use it too). Both formats are declared in the package ``__init__``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch import nn

from ...artifacts import Artifact, save_hf
from ...config import ConfigError
from ...dist import on_main_process
from ...engine.metrics import evaluate, predict
from ...engine.trainer import train
from ...stages import StageContext, StageResult
from .config import ExportConfig, QatDistillConfig
from .export import export_packed, load_packed, size_report
from .objective import KDQATObjective
from .student import quantize_model

STUDENT_FORMAT, PACKED_FORMAT = "kdqat_student", "kdqat"


def run_qat_distill(cfg: QatDistillConfig, ctx: StageContext) -> StageResult:
    data = ctx.inputs()
    source = ctx.source()
    _require_finetuned(source)
    teacher = ctx.load(source, head="classifier", num_labels=data.num_labels)
    student = quantize_model(ctx.load(source, head="classifier", num_labels=data.num_labels), cfg.quant)
    objective = KDQATObjective(cfg.distill, student, teacher)
    report = train(
        student,
        data.train,
        settings=cfg,
        out_dir=ctx.stage_dir,
        objective=objective,
        collator=data.collator,
        teacher=teacher,
        validation=data,
        seed=ctx.seed,
    )
    selection = report.selection or {}
    metrics = evaluate(student, data, cfg.eval_batch_size, precision=cfg.precision)
    artifact = save_hf(
        student,
        ctx.stage_dir / "model",
        ctx.recipe.model,
        head="classifier",
        label_names=ctx.task().label_names,
        meta=cfg.quant.model_dump(),
        format=STUDENT_FORMAT,
    )
    return StageResult(
        artifact,
        {
            **metrics,
            "train": {k: v for k, v in report.as_dict().items() if k != "selection"},
            "selection": selection,
            "loss_weights": objective.weights,
        },
    )


def _require_finetuned(source: Artifact) -> None:
    """The teacher must already be a task model: the previous stage's, or a fine-tuned recipe model."""
    config = source.path / "config.json"
    archs = (json.loads(config.read_text()).get("architectures") or []) if config.is_file() else []
    if not any(a.endswith(("ForSequenceClassification", "ForImageClassification")) for a in archs):
        raise ValueError(
            f"qat_distill needs a fine-tuned full-precision teacher, but {source.path} holds "
            f"{archs or 'no classifier'}: put a 'finetune' stage before it"
        )


def run_export(cfg: ExportConfig, ctx: StageContext) -> StageResult:
    if ctx.previous is None or ctx.previous.format != STUDENT_FORMAT:
        raise ValueError(
            f"export packs a quantized student: put it after 'qat_distill' (previous artifact "
            f"format is {getattr(ctx.previous, 'format', None)!r}, expected {STUDENT_FORMAT!r})"
        )
    data = ctx.inputs()
    artifact, student = pack_student(ctx.previous, ctx.stage_dir / "model", data.num_labels)
    packed = load_packed(artifact.path)
    metrics = evaluate(packed, data, cfg.eval_batch_size)
    metrics["test"].update(agreement_with_student(student, packed, data, cfg.eval_batch_size))
    metrics["size"] = size_report(student, artifact.path)
    return StageResult(artifact, metrics)


def pack_student(source: Artifact, folder: Path, num_labels: int | None = None) -> tuple[Artifact, nn.Module]:
    """Pack a ``kdqat_student`` artifact into a ``kdqat`` one in ``folder``; also returns the student."""
    if source.format != STUDENT_FORMAT:
        raise ConfigError(
            f"'{source.path}' has format '{source.format}', expected '{STUDENT_FORMAT}' "
            "(the model folder of a qat_distill stage)"
        )
    student = load_student(source, "classifier", num_labels).eval()
    on_main_process(lambda: export_packed(student, folder, source.settings(), head="classifier"))
    artifact = Artifact(
        folder, source.model_name, PACKED_FORMAT, source.head, source.label_names, meta=dict(source.meta)
    ).save()
    return artifact, student


def agreement_with_student(student: nn.Module, packed: nn.Module, data, batch_size: int) -> dict:
    """How closely the packed model reproduces the student on the test split (the export's check)."""
    student_logits, _ = predict(student, data.test, data.collator, batch_size)
    packed_logits, _ = predict(packed, data.test, data.collator, batch_size)
    return {
        "agreement_with_student": float((student_logits.argmax(-1) == packed_logits.argmax(-1)).mean()),
        "max_abs_logit_diff": float(np.abs(student_logits - packed_logits).max()),
    }


def load_student(artifact: Artifact, head: str, num_labels: int | None):
    """Format ``kdqat_student``: the HF folder of latent weights, re-quantized as in training."""
    from ...zoo.models import load_folder

    model = load_folder(artifact.path, head, num_labels or artifact.num_labels)
    return quantize_model(model, artifact.settings())


def load_packed_artifact(artifact: Artifact, head: str, num_labels: int | None):
    """Format ``kdqat``: the packed model; ``head="base"`` gives its encoder (e.g. for adapters)."""
    model = load_packed(artifact.path)
    if head == "base":
        return getattr(model, model.base_model_prefix)
    if head != "classifier":
        raise ValueError(f"a packed kdqat artifact has heads 'classifier' and 'base', not {head!r}")
    if num_labels is not None and num_labels != model.config.num_labels:
        raise ValueError(
            f"{artifact.path} was exported with {model.config.num_labels} labels, asked for {num_labels}; "
            "load head='base' to put a new head on the ternary encoder"
        )
    return model
