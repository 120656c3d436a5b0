"""Training settings shared by every stage that trains (import-light: no torch)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..config import StrictModel


class TrainSettings(StrictModel):
    """Optimisation settings; a stage config that trains subclasses this."""

    epochs: float = Field(3.0, gt=0, description="passes over the training set (ignored if steps is set)")
    steps: int | None = Field(None, gt=0, description="total optimisation steps; overrides epochs")
    lr: float = Field(2e-5, gt=0)
    batch_size: int = Field(32, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    scheduler: Literal["linear", "constant", "cosine", "constant_with_warmup"] = "linear"
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float | None = Field(1.0, gt=0)
    grad_accum: int = Field(1, gt=0)
    log_every: int = Field(10, gt=0)
    save_every: int = Field(200, gt=0, description="checkpoint interval in steps (for resume)")
    eval_batch_size: int = Field(64, gt=0)
    non_finite: Literal["stop", "skip"] = Field(
        "stop", description="NaN/inf loss or gradient: stop the stage with an error, or skip that step (counted)")

    @model_validator(mode="after")
    def _betas_in_range(self) -> "TrainSettings":
        if not all(0 <= b < 1 for b in self.adam_betas):
            raise ValueError(f"adam_betas must lie in [0, 1), got {self.adam_betas}")
        return self
