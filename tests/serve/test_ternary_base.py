"""VeRA and LoRA adapters trained on a packed ternary KD-QAT base are served on that base."""

import pytest

from tailor.artifacts import Artifact
from tailor.serve.registry import AdapterRefused, Registry
from tailor.zoo import models as zoo

from .conftest import alone, save_random_adapter

pytest.importorskip("tailor.methods.kdqat.export")


def test_mixed_batch_on_a_packed_ternary_base(tmp_path, zoo_adapters):
    from tailor.methods.kdqat.config import QuantConfig
    from tailor.methods.kdqat.export import export_packed
    from tailor.methods.kdqat.quant import QuantLinear
    from tailor.methods.kdqat.student import quantize_model

    # ternary weights with full-precision activations: KD-QAT's default 8-bit activations take one
    # dynamic scale per tensor, so a row's answer would depend on the other rows of its batch
    quant = QuantConfig(act_bits=None)
    student = quantize_model(zoo.load("tiny-bert", "classifier", num_labels=3), quant).eval()
    packed = Artifact(
        export_packed(student, tmp_path / "packed", quant), "tiny-bert", "kdqat", meta=quant.model_dump()
    ).save()
    vera, vera_dir = save_random_adapter(packed, tmp_path / "vera", "vera", 1, ["a", "b", "c"])
    lora, lora_dir = save_random_adapter(packed, tmp_path / "lora", "lora", 2, ["x", "y", "z"])
    registry = Registry(packed, 3, "fp32")  # compared with each adapter alone in fp32
    assert any(isinstance(m, QuantLinear) for m in registry.model.modules())
    registry.load(vera_dir, "vera")
    registry.load(lora_dir, "lora")
    from peft.tuners.lora.layer import LoraLayer
    from peft.tuners.vera.layer import VeraLayer

    for kind, layer_type in (("vera", VeraLayer), ("lora", LoraLayer)):  # the adapters sit on ternary layers
        layers = [m for m in registry._peft[kind].modules() if isinstance(m, layer_type)]
        assert layers and all(isinstance(m.base_layer, QuantLinear) for m in layers), kind
    rows = [("lora", "zz top"), ("vera", "vote early"), ("vera", "hi"), ("lora", "a b")]
    for (name, text), answer in zip(rows, registry.run(rows)):
        expected = alone(vera if name == "vera" else lora, text)
        assert list(answer["probs"].values()) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(AdapterRefused, match="trained on a 'hf' base .* this server's base is 'kdqat'"):
        registry.load(zoo_adapters["dirs"]["vera0"], "dense")
