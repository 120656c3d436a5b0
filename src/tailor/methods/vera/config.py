"""Stage configs for `vera` and `lora` (pydantic only: importable without torch).

Paper defaults (Kopiczko et al., ICLR 2024): shared Kaiming-uniform A/B regenerated from one seed,
b = 0, d = d_initial = 0.1, no alpha scaling, separate learning rates for the vectors and the head.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ...config import StrictModel
from ...engine.settings import TrainSettings


class AdapterFields(StrictModel):
    """Fields shared by the VeRA and LoRA stages."""

    target_modules: list[str] | None = Field(
        None, description="module-name suffixes to adapt; None = the model family's preset (presets.py)"
    )
    head_lr: float | None = Field(
        None, gt=0, description="learning rate of the freshly initialised task head; None = same as lr"
    )
    task: Literal["classify", "causal_lm"] = Field(
        "classify", description="classify: sequence/image classification head; causal_lm: next-token LM"
    )


class VeraFields(AdapterFields):
    """VeRA (Eq. 2): h = W0 x + diag(b) B diag(d) A x with frozen shared A (r x n), B (m x r)."""

    r: int = Field(256, ge=1, description="rank of the shared random projections; may exceed the layer width")
    d_initial: float = Field(0.1, description="initial value of every entry of d (paper: 0.1; Table 6 ablates)")
    projection_seed: int = Field(0, ge=0, description="PRNG seed that regenerates A and B (peft projection_prng_key)")
    save_projection: bool = Field(
        True,
        description="store A and B in the adapter file; False stores only the vectors (+head), "
        "and A, B are regenerated from projection_seed on load",
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the VeRA branch input (a peft extra)")
    vectors: Literal["both", "only_b", "only_d"] = Field(
        "both", description="Table 6 ablation: only_b freezes d at 1; only_d freezes b at 1 and starts d at 0"
    )
    projection_init: Literal["kaiming_uniform", "kaiming_normal", "uniform"] = Field(
        "kaiming_uniform", description="Table 6 ablation: init of A and B (uniform = U[0, 0.1])"
    )
    shared_projection: bool = Field(
        True,
        description="Table 7 ablation: False draws a unique A, B per adapted layer, saved next to the peft "
        "adapter (vera_unique_projections.safetensors); only tailor's loader restores them",
    )

    @model_validator(mode="after")
    def _projections_must_be_saved_when_not_regenerable(self):
        """peft regenerates A, B only as shared Kaiming-uniform; other choices must be saved to reload."""
        if not self.save_projection and (self.projection_init != "kaiming_uniform" or not self.shared_projection):
            raise ValueError(
                "save_projection: false needs projection_init: kaiming_uniform and shared_projection: true "
                f"(got projection_init={self.projection_init!r}, shared_projection={self.shared_projection}); "
                "peft can only regenerate shared Kaiming-uniform projections from the seed"
            )
        return self


class LoraFields(AdapterFields):
    """LoRA (Hu et al., 2022), the paper's baseline: h = W0 x + (alpha / r) B A x."""

    r: int = Field(8, ge=1, description="LoRA rank (the paper's baseline uses 8)")
    alpha: float = Field(16.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout")


class VeraConfig(TrainSettings, VeraFields):
    """The `vera` stage: peft VeRA on the previous stage's model; lr is the vectors' learning rate.

    The paper drops LoRA's alpha and gives the head its own rate (Sec. 4.1). Defaults: the vectors at
    1e-2 and the head at 4e-3, RoBERTa-base's pair on MRPC and QNLI in Table 8 (p. 14; checked against
    the English PDF's text, docs/reproductions/paper_settings.md). Table 8 has no single head rate:
    4e-3 on SST-2, MRPC, QNLI and 1e-2 on CoLA, RTE, STS-B; VeRA 1e-2 on four of the six tasks."""

    lr: float = Field(
        1e-2,
        gt=0,
        description="learning rate of the d and b vectors (VeRA needs far larger rates than full fine-tuning)",
    )
    head_lr: float | None = Field(
        4e-3,
        gt=0,
        description="learning rate of the freshly initialised task head (paper: its own rate; "
        "VeRA Table 8, RoBERTa-base: 4e-3 on SST-2, MRPC, QNLI, 1e-2 on CoLA, RTE, STS-B); None = same as lr",
    )


class LoraConfig(TrainSettings, LoraFields):
    """The `lora` stage: peft LoRA on the previous stage's model; lr is the A/B matrices' learning rate."""

    lr: float = Field(5e-4, gt=0, description="learning rate of the LoRA matrices")
