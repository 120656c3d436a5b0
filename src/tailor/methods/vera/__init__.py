"""VeRA (Kopiczko et al., ICLR 2024) and its LoRA baseline, on peft; declares `vera` and `lora`."""

from ...plugins import declare_method
from .config import LoraConfig, VeraConfig

declare_method(
    "vera",
    __name__,
    "shared frozen random matrices with tiny trained scaling vectors; LoRA beside it",
    stages=[
        (
            "vera",
            VeraConfig,
            ".stages:run_vera",
            "VeRA adapter (shared frozen random A/B, trained d/b vectors + head), saved in peft format",
        ),
        ("lora", LoraConfig, ".stages:run_lora", "LoRA adapter (trained low-rank A/B + head), saved in peft format"),
    ],
    formats={"peft": ".stages:load_peft_artifact"},  # torch and peft load only when an adapter does
    repro=".repro",
    bench=".bench",
    commands=".commands",
)
