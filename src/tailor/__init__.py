"""tailor: tailor a pretrained model to your task.

Adapt (self-distillation for further pre-training), tune cheaply (VeRA, LoRA) and shrink
(KD for quantization-aware training, robust lottery tickets) real Hugging Face / PyTorch models,
with recipes whose stages pass a model on.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_recipe": "tailor.recipe",
    "parse_recipe": "tailor.recipe",
    "run_recipe": "tailor.pipeline",
    "train": "tailor.engine.trainer",
    "load_model": "tailor.artifacts",
}


def __getattr__(name: str):
    """`tailor.run_recipe` etc. without importing torch until they are used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tailor' has no attribute {name!r}")
