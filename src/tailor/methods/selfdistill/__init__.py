"""Self-distillation for further pre-training (Lee et al., ICLR 2023): stage registration only."""

from ...stages import register_stage
from .config import FurtherPretrainConfig, SelfDistillConfig

register_stage("further_pretrain", FurtherPretrainConfig, "tailor.methods.selfdistill.stages:run_further_pretrain",
               "Masked auto-encoding on the task's unlabeled inputs (MLM / MAE / masked patches); the teacher")
register_stage("self_distill", SelfDistillConfig, "tailor.methods.selfdistill.stages:run_self_distill",
               "Student from the original weights: masked auto-encoding + squared-L2 distillation to the teacher")
