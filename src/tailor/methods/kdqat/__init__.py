"""KD for quantization-aware training (Kim et al., EMNLP 2022): stages ``qat_distill`` and ``export``.

Import-light: configs only; the torch-heavy runners and loaders are imported when used.
"""

from ...plugins import declare_method
from .config import ExportConfig, QatDistillConfig, QuantConfig

declare_method(
    "kdqat",
    __name__,
    "ternary/k-bit encoders trained with attention distillation from the FP teacher",
    stages=[
        (
            "qat_distill",
            QatDistillConfig,
            ".stages:run_qat_distill",
            "ternary/k-bit QAT student initialised from and distilled from the fine-tuned FP model",
        ),
        (
            "export",
            ExportConfig,
            ".stages:run_export",
            "pack the quantized student (2-bit codes + scales, safetensors uint8) and verify the reload",
        ),
    ],
    formats={
        "kdqat_student": (".stages:load_student", QuantConfig),
        "kdqat": (".stages:load_packed_artifact", QuantConfig),
    },
    repro=".repro",
    bench=".bench",
    commands=".commands",
)
