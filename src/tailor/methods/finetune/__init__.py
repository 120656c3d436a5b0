"""The fine-tuning baseline: a task head on any zoo model, trained with cross-entropy."""
from ...stages import register_stage
from .config import FinetuneConfig

register_stage("finetune", FinetuneConfig, "tailor.methods.finetune.stages:run_finetune",
               "fine-tune the model with a new classification head (text or images)")
