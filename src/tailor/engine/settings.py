"""Training settings shared by every stage that trains (import-light: no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..config import StrictModel


class TrainSettings(StrictModel):
    """Optimisation settings; a stage config that trains subclasses this."""

    epochs: float = Field(3.0, gt=0, description="passes over the training set (ignored if steps is set)")
    steps: int | None = Field(None, gt=0, description="total optimisation steps; overrides epochs")
    min_steps: int | None = Field(
        None,
        gt=0,
        description="at least this many optimisation steps when `epochs` gives fewer (small training sets); "
        "ignored if steps is set",
    )
    lr: float = Field(2e-5, gt=0)
    batch_size: int = Field(32, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    scheduler: Literal["linear", "constant", "cosine", "constant_with_warmup", "multistep"] = Field(
        "linear", description="transformers' schedules, or multistep: lr x gamma at each of `milestones`"
    )
    milestones: list[float] = Field([], description="multistep: where lr is multiplied by gamma")
    milestones_in: Literal["epochs", "steps"] = Field("epochs", description="multistep: unit of `milestones`")
    gamma: float = Field(0.1, gt=0, le=1, description="multistep: factor at each milestone")
    optimizer: Literal["adamw", "sgd", "bertadam"] = Field(
        "adamw",
        description="torch AdamW; SGD (momentum, nesterov); or bertadam, the original BERT code's Adam (no bias "
        "correction, max_grad_norm applied to each parameter's gradient on its own), which KD-QAT's reference uses",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd: momentum")
    nesterov: bool = Field(False, description="sgd: Nesterov momentum")
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float | None = Field(1.0, gt=0)
    grad_accum: int = Field(1, gt=0)
    log_every: int = Field(10, gt=0)
    save_every: int = Field(200, gt=0, description="checkpoint interval in steps (for resume)")
    eval_batch_size: int = Field(64, gt=0)
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in backward (less memory, ~30% slower)"
    )
    compile: bool = Field(
        False, description="torch.compile the model (Trainer's torch_compile); off: no gain measured on CPU"
    )
    eval_every: int | None = Field(
        None, gt=0, description="score the validation split every N steps (classifier stages)"
    )
    select: Literal["last", "best"] = Field(
        "last", description="weights kept: the last step's, or the best validation score's"
    )
    patience: int | None = Field(None, gt=0, description="stop after N evaluations without a better validation score")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="training and evaluation arithmetic; auto = bf16 on CUDA with bf16 or a CPU with "
        "AMX/AVX512-BF16, else fp32 (fp16 = CUDA fp16 with loss scaling)",
    )
    non_finite: Literal["stop", "skip"] = Field(
        "stop", description="NaN/inf loss or gradient: stop the stage with an error, or skip that step (counted)"
    )

    @model_validator(mode="after")
    def _betas_in_range(self) -> "TrainSettings":
        if not all(0 <= b < 1 for b in self.adam_betas):
            raise ValueError(f"adam_betas must lie in [0, 1), got {self.adam_betas}")
        return self

    @model_validator(mode="after")
    def _schedule_fits(self) -> "TrainSettings":
        if self.scheduler == "multistep":
            if (
                not self.milestones
                or any(b <= a for a, b in zip(self.milestones, self.milestones[1:]))
                or self.milestones[0] <= 0
            ):
                raise ValueError(
                    f"scheduler: multistep needs milestones: a list of increasing positive "
                    f"{self.milestones_in}, got {self.milestones}"
                )
            if self.warmup_ratio:
                raise ValueError(
                    "scheduler: multistep has no warm-up; set warmup_ratio: 0 (or use "
                    "constant_with_warmup/linear/cosine)"
                )
        elif self.milestones:
            raise ValueError(f"milestones are read by scheduler: multistep only (scheduler is {self.scheduler!r})")
        # A stage whose own default is best (kdqat) applies it only with eval_every; comparing with the
        # default, not with the keys given, keeps a resolved config.yaml valid when it is read back.
        asked_best = self.select == "best" != type(self).model_fields["select"].default
        if (asked_best or self.patience) and not self.eval_every:
            raise ValueError("select: best and patience need eval_every: N (score the validation split every N steps)")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError("nesterov: true needs optimizer: sgd with momentum > 0")
        return self
