"""VeRA (Kopiczko et al., ICLR 2024) and its LoRA baseline, on peft; registers `vera` and `lora`."""
from ...artifacts import register_format
from ...stages import register_stage
from .config import LoraConfig, VeraConfig

register_stage("vera", VeraConfig, "tailor.methods.vera.stages:run_vera",
               "VeRA adapter (shared frozen random A/B, trained d/b vectors + head), saved in peft format")
register_stage("lora", LoraConfig, "tailor.methods.vera.stages:run_lora",
               "LoRA adapter (trained low-rank A/B + head), saved in peft format")


def _load_peft(artifact, head, num_labels):
    from .stages import load_peft_artifact  # heavy (torch, peft): only when an adapter is loaded

    return load_peft_artifact(artifact, head, num_labels)


register_format("peft", _load_peft)
