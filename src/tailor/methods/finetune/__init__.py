"""The fine-tuning baseline: a task head on any zoo model, trained with cross-entropy."""

from ...plugins import declare_method
from .config import FinetuneConfig

declare_method(
    "finetune",
    __name__,
    "the baseline every method is compared with",
    stages=[
        (
            "finetune",
            FinetuneConfig,
            ".stages:run_finetune",
            "fine-tune the model with a new classification head (text or images)",
        )
    ],
)
