"""Configuration of the kdqat stages (pydantic only; no torch import, the CLI validates early).

Defaults are the reference code's (spec §1.4, §3): ternary TWN weights (layer-wise; row-wise for
the word embedding), 8-bit activations clipped to ±2.5, position/token-type embeddings, biases,
LayerNorms and the classifier in full precision, lr 2e-5, 3 epochs, 10% linear warmup.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ...config import StrictModel
from ...engine.settings import TrainSettings

Preset = Literal["ternarybert", "map", "output", "sm1", "sm2"]
TermName = Literal["pred", "rep", "score", "map", "output", "gt"]
EmbeddingMode = Literal["rowwise", "layerwise", "fp"]


class QuantConfig(StrictModel):
    """What is quantized and how (W2A8 ternary by default)."""

    weight_scheme: Literal["twn", "uniform"] = "twn"
    weight_bits: Literal[2, 4, 8] = 2
    weight_clip: float = Field(2.5, gt=0)
    act_bits: Literal[4, 8] | None = 8  # None: full-precision activations
    act_clip: float = Field(2.5, gt=0)
    quantize_attention: bool = True  # Q, K, V and attention probabilities (8-bit)
    word_embeddings: EmbeddingMode = "rowwise"
    position_embeddings: EmbeddingMode = "fp"
    token_type_embeddings: EmbeddingMode = "fp"
    pooler: bool = True
    classifier: bool = False
    bias_bits: Literal[4, 8] | None = None  # None: biases stay full precision
    layernorm_bits: Literal[4, 8] | None = None  # None: LayerNorms stay full precision

    @model_validator(mode="after")
    def _ternary_is_two_bits(self) -> "QuantConfig":
        if self.weight_scheme == "twn" and self.weight_bits != 2:
            raise ValueError(
                f"weight_scheme 'twn' (ternary) needs weight_bits 2, got {self.weight_bits}; "
                "use weight_scheme 'uniform' for 4 or 8 bits"
            )
        return self


def unified_weights(form: str, beta: float) -> dict[str, float]:
    """Eq. 8 coefficients: SM1 = map + β·output, SM2 = output + β·map."""
    if form == "sm1":
        return {"map": 1.0, "output": beta}
    if form == "sm2":
        return {"map": beta, "output": 1.0}
    raise ValueError(f"unified form {form!r} is not one of 'sm1', 'sm2'")


PRESET_WEIGHTS: dict[str, dict[str, float]] = {
    "ternarybert": {"pred": 1.0, "rep": 1.0, "score": 1.0},
    "map": {"pred": 1.0, "rep": 1.0, "map": 1.0},
    "output": {"pred": 1.0, "rep": 1.0, "output": 1.0},
    "sm1": {"pred": 1.0, "rep": 1.0},  # + unified_weights("sm1", beta)
    "sm2": {"pred": 1.0, "rep": 1.0},  # + unified_weights("sm2", beta)
}


class DistillConfig(StrictModel):
    """Which KD terms, with which weights (spec §2.7: every weight 1, no ground-truth CE)."""

    preset: Preset = "ternarybert"
    beta: float = Field(0.5, ge=0)  # SM1/SM2 mixing weight (the paper tunes it per task)
    weights: dict[TermName, float] = Field(default_factory=dict)  # overrides on top of the preset
    temperature: float = Field(1.0, gt=0)  # logits soft-CE temperature
    map_tau: float = Field(1.0, gt=0)  # attention-map KL temperature (Table 1)
    layers: list[int] | None = None  # layers distilled by rep/score/map/output; None = all

    def term_weights(self) -> dict[str, float]:
        weights = dict(PRESET_WEIGHTS[self.preset])
        if self.preset in ("sm1", "sm2"):
            weights.update(unified_weights(self.preset, self.beta))
        weights.update(self.weights)
        return {k: v for k, v in weights.items() if v != 0}


class QatDistillConfig(TrainSettings):
    """Stage ``qat_distill``: QAT of a quantized student initialised from, and distilled from, the
    fine-tuned full-precision model of the previous stage."""

    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    quant: QuantConfig = Field(default_factory=QuantConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    select: Literal["last", "best"] = Field(
        "best",
        description="with eval_every: keep the best validation weights (the reference code reports the best dev score)",
    )


class ExportConfig(StrictModel):
    """Stage ``export``: pack the quantized student (2-bit codes + scales) and check the reloaded model."""

    eval_batch_size: int = Field(64, gt=0)
