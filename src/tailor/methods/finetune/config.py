from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...config import StrictModel
from ...engine.settings import TrainSettings


class FinetuneRegularizer(StrictModel):
    """A regulariser of fine-tuning (the self-distillation paper's baselines, Tables 1-2)."""

    kind: Literal["none", "l2_to_pretrained", "mars", "r3f"] = "none"
    coef: float = Field(
        0.01, ge=0, description="l2_to_pretrained: weight on Σ||θ-θ_init||²; r3f: λ on the symmetric KL"
    )
    radius: float = Field(1.0, gt=0, description="mars: radius of the MARS-norm ball around each pre-trained weight")
    eps: float = Field(1e-5, ge=0, description="r3f: noise scale on the input embeddings")
    noise: Literal["uniform", "normal"] = "uniform"


class FinetuneConfig(TrainSettings):
    """Full fine-tuning of encoder and a fresh classification head.

    The defaults were chosen by the sweep in docs/defaults/ (minilm-l6, 1,000 training examples): a
    fresh head at the encoder's rate barely moves in ~100 steps and the model predicts one class; a
    pooler drawn anew beat minilm-l6's own, which its sentence-embedding training never used (and
    re-initialising it helps few-sample BERT fine-tuning generally: Zhang et al., ICLR 2021)."""

    lr: float = Field(1e-4, gt=0, description="learning rate of the encoder")
    head_lr: float | None = Field(
        2e-3, gt=0, description="learning rate of the new head (None: lr); a fresh head needs a larger one"
    )
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    min_steps: int | None = Field(
        150, gt=0, description="at least this many optimisation steps when epochs give fewer (small data)"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    pooler: Literal["keep", "reinit"] = Field(
        "reinit",
        description="the encoder's pooler (BERT): draw it anew from the seed, as RoBERTa's fresh classification "
        "head (the default: docs/defaults/), or keep the source's (pretrained, carried through further pre-training)",
    )
    regularizer: FinetuneRegularizer = Field(
        default_factory=FinetuneRegularizer,
        description="baseline regularizer: l2_to_pretrained (RecAdam's penalty), mars, r3f",
    )


# What a reproduction's finetune stages pin so that their schedule is the one their documented tables were
# measured with, whatever the user-facing defaults above become: the head at the encoder's rate, no step floor,
# the source's pooler.
REPRO_SCHEDULE = {"head_lr": None, "min_steps": None, "pooler": "keep"}
