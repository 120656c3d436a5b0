"""KD for quantization-aware training (Kim et al., EMNLP 2022): stages ``qat_distill`` and ``export``.

Import-light: configs only; the torch-heavy runners and loaders are imported when used.
"""
from ...artifacts import register_format
from ...stages import register_stage
from .config import ExportConfig, QatDistillConfig


def _load_student(artifact, head, num_labels):
    from .stages import load_student
    return load_student(artifact, head, num_labels)


def _load_packed(artifact, head, num_labels):
    from .stages import load_packed_artifact
    return load_packed_artifact(artifact, head, num_labels)


register_stage("qat_distill", QatDistillConfig, "tailor.methods.kdqat.stages:run_qat_distill",
               "ternary/k-bit QAT student initialised from and distilled from the fine-tuned FP model")
register_stage("export", ExportConfig, "tailor.methods.kdqat.stages:run_export",
               "pack the quantized student (2-bit codes + scales, safetensors uint8) and verify the reload")
register_format("kdqat_student", _load_student)
register_format("kdqat", _load_packed)
