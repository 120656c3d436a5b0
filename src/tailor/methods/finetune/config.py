from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...engine.settings import TrainSettings
from ..selfdistill.config import FinetuneRegularizer


class FinetuneConfig(TrainSettings):
    """Full fine-tuning of encoder and a fresh classification head."""

    head_lr: float | None = Field(None, gt=0, description="learning rate of the new head (default: lr)")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    pooler: Literal["keep", "reinit"] = Field(
        "keep", description="the encoder's pooler (BERT): keep the source's (pretrained, carried through further "
                            "pre-training), or draw it anew from the seed, as RoBERTa's fresh classification head")
    regularizer: FinetuneRegularizer = Field(default_factory=FinetuneRegularizer,
                                             description="baseline regularizer: l2_to_pretrained (RecAdam's penalty), mars, r3f")
