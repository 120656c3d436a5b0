"""Build, ablate, count, randomise, save and load peft VeRA/LoRA adapters from tailor configs.

peft does the method (VeraConfig/LoraConfig, layers, merge, adapter files). Written here is only
what peft lacks: the paper's Table 6/7 ablations (A/B init scheme, only-b / only-d vectors, unique
per-layer projections), the paper's parameter accounting (head excluded), and on-disk byte counts.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, VeraConfig, get_peft_model
from peft.tuners._buffer_dict import BufferDict
from peft.tuners.vera.layer import VeraLayer
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ...files import atomic_folder
from .presets import head_modules_for, target_modules_for

ADAPTER_FILE = "adapter_model.safetensors"
UNIQUE_PROJECTIONS_FILE = "vera_unique_projections.safetensors"
HEAD_PARAM_PATTERN = r"\.modules_to_save\."


def _heads(model, task: str) -> list[str] | None:
    return (head_modules_for(model) or None) if task == "classify" else None


def _task_type(task: str) -> str | None:
    # CAUSAL_LM gives PeftModelForCausalLM (generate() with adapters); classification heads are
    # declared through modules_to_save on the generic PeftModel, which also covers image models.
    return "CAUSAL_LM" if task == "causal_lm" else None


def build_vera(model: torch.nn.Module, cfg, adapter_name: str = "default") -> PeftModel:
    """Wrap ``model`` with a VeRA adapter described by ``cfg`` (a VeraFields)."""
    config = VeraConfig(
        r=cfg.r,
        target_modules=target_modules_for(model, cfg.target_modules),
        projection_prng_key=cfg.projection_seed,
        save_projection=cfg.save_projection,
        vera_dropout=cfg.dropout,
        d_initial=cfg.d_initial,
        modules_to_save=_heads(model, cfg.task),
        task_type=_task_type(cfg.task),
    )
    peft_model = get_peft_model(model, config, adapter_name=adapter_name)
    if cfg.projection_init != "kaiming_uniform":
        reinit_shared_projections(peft_model, cfg.projection_init, cfg.projection_seed, adapter_name)
    if not cfg.shared_projection:
        unshare_projections(peft_model, cfg.projection_init, cfg.projection_seed, adapter_name)
    apply_vector_ablation(peft_model, cfg.vectors, adapter_name)
    return peft_model


def build_lora(model: torch.nn.Module, cfg, adapter_name: str = "default") -> PeftModel:
    """Wrap ``model`` with a LoRA adapter described by ``cfg`` (a LoraFields)."""
    config = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=target_modules_for(model, cfg.target_modules),
        modules_to_save=_heads(model, cfg.task),
        task_type=_task_type(cfg.task),
        fan_in_fan_out=getattr(getattr(model, "config", None), "model_type", None) == "gpt2",
    )
    return get_peft_model(model, config, adapter_name=adapter_name)


def init_projection(shape: tuple[int, int], scheme: str, generator: torch.Generator) -> torch.Tensor:
    """A frozen random projection, fan_in = shape[1] so that Var(BA) does not depend on r.

    kaiming_uniform is peft's (gain sqrt 2): U(-sqrt(6/fan_in), +sqrt(6/fan_in)); kaiming_normal
    is N(0, 2/fan_in); uniform is the paper's U[0, 0.1] ablation (Table 6).
    """
    out = torch.empty(shape)
    fan_in = shape[1]
    if scheme == "kaiming_uniform":
        bound = math.sqrt(6.0 / fan_in)
        return out.uniform_(-bound, bound, generator=generator)
    if scheme == "kaiming_normal":
        return out.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
    if scheme == "uniform":
        return out.uniform_(0.0, 0.1, generator=generator)
    raise ValueError(f"unknown projection_init {scheme!r}; valid: kaiming_uniform, kaiming_normal, uniform")


@torch.no_grad()
def reinit_shared_projections(peft_model: PeftModel, scheme: str, seed: int, adapter_name: str) -> None:
    """Redraw the shared A (r x max_in) and B (max_out x r) in place with another init scheme."""
    tuner = peft_model.base_model
    generator = torch.Generator().manual_seed(seed)
    for buffers in (tuner.vera_A, tuner.vera_B):
        shared = buffers[adapter_name]
        shared.copy_(init_projection(tuple(shared.shape), scheme, generator))


@torch.no_grad()
def unshare_projections(peft_model: PeftModel, scheme: str, seed: int, adapter_name: str) -> None:
    """Give every VeRA layer its own A (r x n) and B (m x r) (Table 7's "unique" setting).

    The per-layer buffers are non-persistent, so peft's adapter file is unchanged; they are saved in
    UNIQUE_PROJECTIONS_FILE by :func:`save_adapter` and restored by :func:`load_adapter`.
    """
    generator = torch.Generator().manual_seed(seed)
    for _, layer in _vera_layers(peft_model):
        r = layer.r[adapter_name]
        device = layer.vera_lambda_d[adapter_name].device
        a = init_projection((r, layer.in_features), scheme, generator).to(device)
        b = init_projection((layer.out_features, r), scheme, generator).to(device)
        layer.vera_A = BufferDict({adapter_name: a}, persistent=False)
        layer.vera_B = BufferDict({adapter_name: b}, persistent=False)


@torch.no_grad()
def apply_vector_ablation(peft_model: PeftModel, vectors: str, adapter_name: str) -> None:
    """Table 6: ``only_b`` fixes d = 1 (frozen); ``only_d`` fixes b = 1 (frozen) and starts d at 0.

    The paper says the other vector is "removed"; a frozen all-ones vector is the identity in Eq. 2,
    which is our reading. Either way delta W = 0 at step 0.
    """
    if vectors == "both":
        return
    if vectors not in ("only_b", "only_d"):
        raise ValueError(f"unknown vectors {vectors!r}; valid: both, only_b, only_d")
    for _, layer in _vera_layers(peft_model):
        d, b = layer.vera_lambda_d[adapter_name], layer.vera_lambda_b[adapter_name]
        frozen, trained = (d, b) if vectors == "only_b" else (b, d)
        frozen.fill_(1.0).requires_grad_(False)
        trained.zero_()


ADAPTER_WEIGHTS = ("vera_lambda_", "lora_A.", "lora_B.", "modules_to_save.")


@torch.no_grad()
def randomize_adapters(peft_model: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> None:
    """Distinct non-zero weights (VeRA vectors, LoRA matrices, saved heads) for every adapter of a
    peft model, as trained adapters would have; for benches and tests, where fresh adapters (b = 0,
    lora_B = 0, one shared head init) would all answer alike. Chosen by name, so every adapter is
    covered, not only the active (trainable) one."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in peft_model.named_parameters():
        if any(key in name for key in ADAPTER_WEIGHTS):
            param.copy_(torch.randn(param.shape, generator=gen).to(param) * scale)


def _vera_layers(model: torch.nn.Module):
    return [(name, m) for name, m in model.named_modules() if isinstance(m, VeraLayer)]


def count_parameters(peft_model: torch.nn.Module) -> dict[str, int]:
    """Trainable parameters split as the paper counts them: adapter (counted) vs task head (not)."""
    head = adapter = 0
    for name, param in peft_model.named_parameters():
        if not param.requires_grad:
            continue
        if ".modules_to_save." in name:
            head += param.numel()
        else:
            adapter += param.numel()
    return {"adapter_params": adapter, "head_params": head, "trainable_params": adapter + head}


def adapter_bytes(adapter_dir: str | Path) -> dict[str, int]:
    """Bytes of the saved adapter weights file, and how its tensor bytes split by kind (the rest of
    the file is the safetensors header; adapter_config.json and peft's README are not counted)."""
    adapter_dir = Path(adapter_dir)
    split = {"vector_bytes": 0, "projection_bytes": 0, "head_bytes": 0}
    with safe_open(adapter_dir / ADAPTER_FILE, framework="pt") as f:
        for key in f.keys():
            sl = f.get_slice(key)
            numel = math.prod(sl.get_shape())
            nbytes = numel * torch.empty((), dtype=_DTYPES[sl.get_dtype()]).element_size()
            kind = (
                "vector_bytes"
                if ("vera_lambda_" in key or "lora_" in key)
                else "projection_bytes"
                if ("vera_A" in key or "vera_B" in key)
                else "head_bytes"
            )  # peft stores modules_to_save under the module's own name
            split[kind] += nbytes
    return {"adapter_file_bytes": (adapter_dir / ADAPTER_FILE).stat().st_size, **split}


_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def save_adapter(peft_model: PeftModel, out_dir: str | Path, adapter_name: str | None = None) -> Path:
    """One adapter (default: the active one) in peft's format, flat in ``out_dir``, written atomically.

    peft puts a non-"default" adapter in a sub-folder named after it; we keep one adapter per folder
    so ``PeftModel.from_pretrained(base, out_dir)`` loads it directly.
    """
    out_dir = Path(out_dir)
    adapter_name = adapter_name or peft_model.active_adapter
    with atomic_folder(out_dir) as tmp:
        peft_model.save_pretrained(tmp, selected_adapters=[adapter_name])
        if adapter_name != "default":
            nested = tmp / adapter_name
            for item in nested.iterdir():
                item.rename(tmp / item.name)
            nested.rmdir()
        unique = _unique_projections(peft_model)
        if unique:
            save_file(unique, str(tmp / UNIQUE_PROJECTIONS_FILE))
    return out_dir


def _unique_projections(peft_model: PeftModel) -> dict[str, torch.Tensor]:
    """Per-layer A/B of layers that do not use the tuner's shared pair (empty for standard VeRA)."""
    shared = getattr(peft_model.base_model, "vera_A", None)
    out = {}
    for name, layer in _vera_layers(peft_model):
        if layer.vera_A is not shared:
            for kind in ("vera_A", "vera_B"):
                buffers = getattr(layer, kind)
                out[f"{name}.{kind}"] = next(iter(buffers.values())).detach().contiguous().cpu()
    return out


def check_base(adapter, base) -> None:
    """Refuse a base model other than the one the adapter was trained on (by sha256 of its weights).

    `adapter` and `base` are `tailor.artifacts.Artifact`s; an adapter saved before fingerprints were
    recorded is accepted. Used by `predict`, by every stage that loads an adapter, and by servers.
    """
    from ...config import ConfigError
    from ...integrity import weights_fingerprint

    expected = (adapter.base or {}).get("weights_sha256")
    if expected is None:
        return
    found = weights_fingerprint(base.path)
    if found != expected:
        raise ConfigError(
            f"adapter '{adapter.path}' was trained on base '{adapter.base.get('model_name')}' "
            f"(weights sha256 {expected[:12]}), but the base found at '{base.path}' has weights sha256 "
            f"{found[:12]}: a different model. Put the original base back (or re-train the adapter "
            "on this one)"
        )


def load_adapter(
    base_model: torch.nn.Module, adapter_dir: str | Path, adapter_name: str = "default", is_trainable: bool = False
) -> PeftModel:
    """``PeftModel.from_pretrained`` plus the unique per-layer projections of a Table 7 ablation."""
    adapter_dir = Path(adapter_dir)
    model = PeftModel.from_pretrained(base_model, adapter_dir, adapter_name=adapter_name, is_trainable=is_trainable)
    unique_file = adapter_dir / UNIQUE_PROJECTIONS_FILE
    if unique_file.exists():
        tensors = load_file(str(unique_file))
        for name, layer in _vera_layers(model):
            device = layer.vera_lambda_d[adapter_name].device
            layer.vera_A = BufferDict({adapter_name: tensors[f"{name}.vera_A"].to(device)}, persistent=False)
            layer.vera_B = BufferDict({adapter_name: tensors[f"{name}.vera_B"].to(device)}, persistent=False)
    return model
