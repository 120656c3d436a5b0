"""tailor: tailor a pretrained model to your task.

Adapt (self-distillation for further pre-training), tune cheaply (VeRA, LoRA) and shrink
(KD for quantization-aware training, robust lottery tickets) real Hugging Face / PyTorch models,
with recipes whose stages pass a model on.
"""

__version__ = "0.1.0"
