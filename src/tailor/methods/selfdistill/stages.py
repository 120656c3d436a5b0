"""Stages ``further_pretrain`` (Algorithm 2) and ``self_distill`` (Algorithm 1).

``further_pretrain`` continues the masked auto-encoding objective on D_u (the task's training inputs,
their labels never read; or an ``unlabeled`` corpus streamed through ``datasets``, split across ranks)
and saves the whole model, encoder + MLM head / decoder: the teacher.
``self_distill`` loads its teacher from ``ctx.previous`` and restarts the student from the ORIGINAL
weights (``ctx.base()``), training it with λ·L_MAE + L_Distill; with ``rounds: T`` the student of
each round teaches the next, and every student restarts from the original weights. ``finetune`` then
loads the student with a fresh classifier (transformers drops the MLM head / our decoder sidecar).

A model whose MLM head or pixel decoder is newly initialised (minilm-l6 ships no MLM head) first
trains only those new tensors for ``head_warmup_steps`` with the encoder frozen; this stands in for
the pre-trained φ_init the paper assumes, and is logged. ``further_pretrain`` stores that φ_init next
to the teacher, and ``self_distill`` starts its students from it (same base, data, seed and warm-up
settings) instead of warming a head up again. A source must be a save_pretrained folder ("hf", or
this method's own artifacts). Under torchrun the engine runs each objective inside the
DistributedDataParallel forward (``engine.trainer.objective_terms``), so the submodule calls are
synchronised; the teacher stays frozen and unwrapped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ...artifacts import Artifact, load_model, save_hf
from ...engine.inputs import stream_inputs
from ...engine.settings import TrainSettings
from ...engine.trainer import train
from ...stages import StageContext, StageResult
from .config import FurtherPretrainConfig, MaskedAutoEncodingSettings, SelfDistillConfig
from .mae import FORMAT as VITMAE_FORMAT
from .mim import has_decoder, load_masked_patch_model
from .objectives import MaskedAutoEncodingObjective, MaskedLM, MaskedPatches, NativeMAE, SelfDistillObjective

log = logging.getLogger(__name__)

OBJECTIVE_FOR_MODALITY = {"text": "mlm", "image": "mim"}


def _model_type(artifact: Artifact) -> str:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(artifact.path).model_type


def resolve_objective(cfg: MaskedAutoEncodingSettings, modality: str, model_type: str) -> str:
    """'auto' -> mlm (text), mae (ViTMAE) or mim (other ViTs); an explicit choice must fit the data."""
    auto = "mae" if model_type == "vit_mae" else OBJECTIVE_FOR_MODALITY[modality]
    choice = auto if cfg.objective == "auto" else cfg.objective
    if (choice == "mlm") != (modality == "text") or (choice == "mae") != (model_type == "vit_mae"):
        raise ValueError(
            f"objective '{choice}' does not fit a {modality} model of type '{model_type}' (use 'auto' or '{auto}')"
        )
    return choice


def _load_with_info(auto_class, folder: Path, **kwargs) -> tuple[nn.Module, set[str]]:
    """A model from a save_pretrained folder, and the names transformers had to initialise anew."""
    model, info = auto_class.from_pretrained(folder, output_loading_info=True, **kwargs)
    return model, set(info["missing_keys"])


def _new_parameters(model: nn.Module, missing: set[str]) -> list[str]:
    # named_parameters lists a tied weight once, so a tied decoder never counts as new
    return [n for n, _ in model.named_parameters() if n in missing]


def build_mae_model(artifact: Artifact, cfg: MaskedAutoEncodingSettings, ctx: StageContext):
    """(model, masked auto-encoding back-end, names of newly initialised parameters) for an HF-folder artifact."""
    import transformers as tf

    data = ctx.inputs()
    choice = resolve_objective(cfg, data.modality, _model_type(artifact))
    if choice == "mlm":
        model, missing = _load_with_info(tf.AutoModelForMaskedLM, artifact.path)
        tok = data.tokenizer
        backend = MaskedLM(
            mask_token_id=tok.mask_token_id,
            special_ids=tok.all_special_ids,
            vocab_size=model.config.vocab_size,
            prob=cfg.mask_prob,
            mask_replace_prob=cfg.mask_replace_prob,
            random_replace_prob=cfg.random_replace_prob,
        )
        return model, backend, _new_parameters(model, missing)
    if choice == "mae":
        model, missing = _load_with_info(
            tf.ViTMAEForPreTraining, artifact.path, mask_ratio=cfg.mask_ratio, norm_pix_loss=cfg.norm_pix_loss
        )
        return model, NativeMAE(), _new_parameters(model, missing)
    encoder, missing = _load_with_info(tf.AutoModel, artifact.path)
    had_mask_token = (
        getattr(encoder.embeddings, "mask_token", None) is not None and "embeddings.mask_token" not in missing
    )
    restored = has_decoder(artifact.path)
    model = load_masked_patch_model(
        encoder,
        artifact.path if restored else None,
        mask_ratio=cfg.mask_ratio,
        mask_mode=cfg.patch_mask,
        norm_pix_loss=cfg.norm_pix_loss,
        decoder_depth=cfg.decoder_depth,
    )
    new = [] if restored else [n for n, _ in model.named_parameters() if n.startswith("decoder.")]
    if not restored and not had_mask_token:
        new.append("encoder.embeddings.mask_token")
    return model, MaskedPatches(), new


def warm_up_new_head(
    model: nn.Module, backend, new: list[str], cfg: MaskedAutoEncodingSettings, ctx: StageContext, out_dir: Path
) -> dict | None:
    """Train only the newly initialised head tensors (encoder frozen) for ``head_warmup_steps``."""
    if not new or cfg.head_warmup_steps == 0:
        if new:
            log.warning(
                "%d newly initialised tensors (%s, ...) are NOT warmed up (head_warmup_steps: 0)", len(new), new[0]
            )
        return None
    log.info(
        "newly initialised head (%s): warming it up for %d steps with the encoder frozen",
        ", ".join(new[:4]) + (", ..." if len(new) > 4 else ""),
        cfg.head_warmup_steps,
    )
    trainable = set(new)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.requires_grad_(n in trainable)
    settings = TrainSettings(
        steps=cfg.head_warmup_steps,
        lr=cfg.head_warmup_lr,
        batch_size=cfg.batch_size,
        weight_decay=0.0,
        log_every=cfg.log_every,
        save_every=cfg.save_every,
    )
    try:
        report = train(
            model,
            unlabeled_data(cfg, ctx, cfg.head_warmup_corpus),
            settings=settings,
            out_dir=out_dir,
            objective=MaskedAutoEncodingObjective(backend),
            collator=ctx.inputs().collator,
            seed=ctx.seed,
        )
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
    return {"new_tensors": new, **report.as_dict()}


INITIAL_HEAD = "initial_head.safetensors"


def _warmup_key(cfg: MaskedAutoEncodingSettings, ctx: StageContext, source: Artifact) -> dict:
    """Everything the warmed-up head depends on; equal keys give the same φ_init, so it can be reused."""
    fields = (
        "head_warmup_steps",
        "head_warmup_lr",
        "batch_size",
        "mask_prob",
        "mask_replace_prob",
        "random_replace_prob",
        "mask_ratio",
        "patch_mask",
        "norm_pix_loss",
        "decoder_depth",
        "objective",
    )
    return {
        **{f: getattr(cfg, f) for f in fields},
        "seed": ctx.seed,
        "source": str(Path(source.path).resolve()),
        "data": ctx.recipe.data.model_dump(mode="json"),
        **({"unlabeled": cfg.unlabeled.model_dump(mode="json")} if cfg.unlabeled else {}),
        **({"head_warmup_corpus": cfg.head_warmup_corpus.model_dump(mode="json")} if cfg.head_warmup_corpus else {}),
    }


def _head_tensors(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    wanted = set(names)
    return {n: p.detach().clone().contiguous() for n, p in model.named_parameters() if n in wanted}


def reusable_initial_head(teacher: Artifact, key: dict, new: list[str]) -> dict[str, torch.Tensor] | None:
    """The warmed-up head φ_init the teacher started from, if it was made from the same base and settings.

    The student restarts from (θ_init, φ_init); when φ_init had to be warmed up (a checkpoint without
    an MLM head), reusing the teacher's gives exactly the same start and saves the warm-up.
    """
    from safetensors.torch import load_file

    file = Path(teacher.path) / INITIAL_HEAD
    if not file.is_file() or teacher.meta.get("initial_head_key") != key:
        return None
    tensors = load_file(str(file))
    return tensors if set(tensors) == set(new) else None


@torch.no_grad()
def _load_head(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for name, value in tensors.items():
        params[name].copy_(value)


@torch.no_grad()
def distance_to(model: nn.Module, reference: dict[str, torch.Tensor]) -> float:
    """||θ − θ_ref||₂ over the encoder parameters (the paper's Fig. 5b quantity)."""
    total = sum(
        float((p - reference[n]).pow(2).sum()) for n, p in model.base_model.named_parameters() if n in reference
    )
    return total**0.5


def _encoder_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.base_model.named_parameters()}


def carried_tensors(source: Artifact, model: nn.Module) -> dict[str, torch.Tensor]:
    """The source checkpoint's encoder tensors that the masked model does not hold: BERT's pooler.

    ``*ForMaskedLM`` has no pooler, so without these a fine-tune after further pre-training would
    start from a random pooler while plain fine-tuning keeps the pretrained one. Masked auto-encoding
    never trains the pooler, so carrying the source's unchanged is exactly what the stage did to it.
    """
    from safetensors import safe_open

    prefix, own, out = model.base_model_prefix, saved_names(model), {}
    for file in sorted(Path(source.path).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            keys = list(f.keys())
            headed = any(k.startswith(prefix + ".") for k in keys)  # else a bare encoder: all keys are its
            for key in keys:
                name = key if headed else f"{prefix}.{key}"
                if name.startswith(prefix + ".") and name not in own:
                    out[name] = f.get_tensor(key)
    return out


def saved_names(model: nn.Module) -> set[str]:
    """The names the model's tensors have in memory and in the checkpoint ``save_pretrained`` writes.

    transformers 5 renames some architectures' weights on load and reverts that on save (ViT-MAE's
    ``vit.layers.0.attention.q_proj`` is saved as ``vit.encoder.layer.0.attention.attention.query``), so
    a checkpoint's keys must be compared with both; otherwise every renamed tensor of the source looks
    missing and its stale value is written over the trained one."""
    from transformers.core_model_loading import revert_weight_conversion

    state = model.state_dict()
    return set(state) | set(revert_weight_conversion(model, state))


def save_mae_model(model: nn.Module, folder: Path, ctx: StageContext, meta: dict, source: Artifact) -> Artifact:
    """An "hf" artifact of the whole MLM/MAE model (plus the encoder tensors of ``source`` it lacks, see
    ``carried_tensors``), or of the ViT encoder plus the MIM decoder sidecar."""
    if hasattr(model, "save_decoder"):
        artifact = save_hf(model.encoder, folder, ctx.recipe.model, head="mae", meta=meta)
        model.save_decoder(folder)
        return artifact
    carried = carried_tensors(source, model)
    if carried:
        log.info(
            "carrying %d tensors of %s the masked model does not train (%s) into the artifact",
            len(carried),
            Path(source.path).name,
            ", ".join(sorted(carried)[:4]),
        )
    # a ViT-MAE needs our own loader: finetune builds a ViT classifier from its encoder
    return save_hf(
        model,
        folder,
        ctx.recipe.model,
        head="mae",
        meta={**meta, "carried": sorted(carried)},
        format=VITMAE_FORMAT if model.config.model_type == "vit_mae" else "hf",
        extra_tensors=carried,
    )


def unlabeled_data(cfg: MaskedAutoEncodingSettings, ctx: StageContext, corpus=None):
    """``corpus`` streamed if given (the head warm-up's), else D_u: the `unlabeled` corpus, streamed, or
    the task's training inputs (their labels are never read)."""
    corpus = corpus or cfg.unlabeled
    if corpus is None:
        return ctx.inputs().train
    return stream_inputs(corpus, ctx.inputs(), ctx.recipe.data.max_length, seed=ctx.seed)


def _train_mae(model, objective, cfg, ctx, out_dir: Path, teacher=None) -> dict:
    report = train(
        model,
        unlabeled_data(cfg, ctx),
        settings=cfg,
        out_dir=out_dir,
        objective=objective,
        collator=ctx.inputs().collator,
        teacher=teacher,
        seed=ctx.seed,
    )
    return report.as_dict()


def run_further_pretrain(cfg: FurtherPretrainConfig, ctx: StageContext) -> StageResult:
    """Algorithm 2: (θ0, φ0) ← (θ_init, φ_init); minimise L_MAE on D_u; save encoder + head (the teacher)."""
    source = ctx.source()
    model, backend, new = build_mae_model(source, cfg, ctx)
    warmup = warm_up_new_head(model, backend, new, cfg, ctx, ctx.stage_dir / "head_warmup")
    initial_head = _head_tensors(model, new) if warmup else None
    start = _encoder_state(model)
    report = _train_mae(model, MaskedAutoEncodingObjective(backend), cfg, ctx, ctx.stage_dir)
    metrics = {"train": report, "distance_to_init": distance_to(model, start)}
    meta = {"stage": "further_pretrain"}
    if warmup:
        metrics["head_warmup"] = warmup
        meta["initial_head_key"] = _warmup_key(cfg, ctx, source)
    artifact = save_mae_model(model, ctx.stage_dir / "model", ctx, meta, source)
    if initial_head:
        from safetensors.torch import save_file

        save_file(initial_head, str(artifact.path / INITIAL_HEAD))
    return StageResult(artifact, metrics)


def run_self_distill(cfg: SelfDistillConfig, ctx: StageContext) -> StageResult:
    """Algorithm 1: each round, a student from the ORIGINAL weights learns λ·L_MAE + L_Distill from the teacher."""
    if ctx.previous is None:
        raise ValueError("self_distill needs a teacher: put a further_pretrain stage before it in the recipe")
    needs_head = cfg.match == "prediction"
    if needs_head:
        teacher, _, _ = build_mae_model(ctx.previous, cfg, ctx)
    else:
        teacher = load_model(ctx.previous, "base")
    metrics: dict = {"rounds": []}
    student, initial_head = None, None
    for round_ in range(1, cfg.rounds + 1):
        student, backend, new = build_mae_model(ctx.base(), cfg, ctx)  # θ_t ← θ_init, φ_t ← φ_init
        round_dir = ctx.stage_dir / f"round-{round_}"
        if initial_head is None and new:
            initial_head = reusable_initial_head(ctx.previous, _warmup_key(cfg, ctx, ctx.base()), new)
        warmup = None
        if initial_head is not None:
            _load_head(student, initial_head)
            log.info("self_distill round %d: student head φ_init = the teacher's warmed-up initial head", round_)
        else:
            warmup = warm_up_new_head(student, backend, new, cfg, ctx, round_dir / "head_warmup")
            initial_head = _head_tensors(student, new) if warmup else None
        init = _encoder_state(student)
        objective = SelfDistillObjective(
            backend,
            representation=cfg.representation,
            match=cfg.match,
            mae_weight=cfg.mae_weight,
            distill_weight=cfg.distill_weight,
        )
        report = _train_mae(student, objective, cfg, ctx, round_dir, teacher=teacher)
        teacher_init_distance = distance_to(teacher, init)
        metrics["rounds"].append(
            {
                "train": report,
                "distance_to_init": distance_to(student, init),
                "teacher_distance_to_init": teacher_init_distance,
                **({"head_warmup": warmup} if warmup else {}),
            }
        )
        log.info(
            "self_distill round %d/%d: ||θ_student − θ_init|| = %.3f, ||θ_teacher − θ_init|| = %.3f",
            round_,
            cfg.rounds,
            metrics["rounds"][-1]["distance_to_init"],
            teacher_init_distance,
        )
        teacher = student if needs_head else student.base_model  # θ0 ← θt
    metrics.update({k: v for k, v in metrics["rounds"][-1].items() if k != "head_warmup"})
    artifact = save_mae_model(
        student, ctx.stage_dir / "model", ctx, {"stage": "self_distill", "rounds": cfg.rounds}, ctx.base()
    )
    return StageResult(artifact, metrics)
