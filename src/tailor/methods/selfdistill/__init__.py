"""Self-distillation for further pre-training (Lee et al., ICLR 2023): its declaration only."""

from ...plugins import declare_method
from .config import FurtherPretrainConfig, PretrainedModelSettings, SelfDistillConfig

declare_method(
    "selfdistill",
    __name__,
    "further pre-training, then self-distillation into a student from the original weights",
    stages=[
        (
            "further_pretrain",
            FurtherPretrainConfig,
            ".stages:run_further_pretrain",
            "Masked auto-encoding on the task's unlabeled inputs (MLM / MAE / masked patches); the teacher",
        ),
        (
            "self_distill",
            SelfDistillConfig,
            ".stages:run_self_distill",
            "Student from the original weights: masked auto-encoding + squared-L2 distillation to the teacher",
        ),
    ],
    formats={"selfdistill_vitmae": (".mae:load_vitmae", PretrainedModelSettings)},
    repro=".repro",
    bench=".bench",
)
