"""peft-format save/load, seed regeneration, the Table 6/7 ablation switches and byte accounting."""

import math

import pytest
import torch
from peft import PeftModel
from safetensors import safe_open

from tailor.methods.vera.adapters import (
    ADAPTER_FILE,
    adapter_bytes,
    build_lora,
    build_vera,
    count_parameters,
    init_projection,
    load_adapter,
    randomize_adapters,
    save_adapter,
)
from tailor.methods.vera.config import LoraFields, VeraFields

from .conftest import randomize_adapter, tiny_bert, tiny_gpt2, token_batch


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_b_zero_makes_step_zero_equal_to_base():
    batch = token_batch(4)
    base = _logits(tiny_bert(), batch)
    vera = build_vera(tiny_bert(), VeraFields(r=16))
    # the head is shared at step 0 too (a copy of the base head), so the whole output is unchanged
    torch.testing.assert_close(_logits(vera, batch), base, rtol=0, atol=0)


def test_forward_is_eq2_on_one_layer():
    """h = W0 x + b * (B (d * (A x))) with A, B sliced from the shared pair (hand-computed)."""
    vera = build_vera(tiny_bert(), VeraFields(r=8))
    randomize_adapter(vera, "default", seed=1)
    layer = vera.base_model.model.bert.encoder.layer[0].attention.self.query
    x = torch.randn(3, 5, 32)
    a, b_mat = vera.base_model.vera_A["default"][:, :32], vera.base_model.vera_B["default"][:32, :]
    d, b = layer.vera_lambda_d["default"], layer.vera_lambda_b["default"]
    delta_w = torch.diag(b) @ b_mat @ torch.diag(d) @ a
    expected = x @ (layer.base_layer.weight + delta_w).T + layer.base_layer.bias
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_plain_peft_loads_tailor_adapter_with_same_outputs(tmp_path):
    vera = build_vera(tiny_bert(), VeraFields(r=16))
    randomize_adapter(vera, "default", seed=2)
    save_adapter(vera, tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(tiny_bert(), tmp_path / "adapter")
    batch = token_batch(4)
    torch.testing.assert_close(_logits(reloaded, batch), _logits(vera, batch), rtol=0, atol=0)


def test_save_projection_false_stores_only_vectors_and_head_and_regenerates_bitwise(tmp_path):
    vera = build_vera(tiny_bert(), VeraFields(r=16, save_projection=False, projection_seed=7))
    randomize_adapter(vera, "default", seed=3)
    save_adapter(vera, tmp_path / "adapter")
    with safe_open(tmp_path / "adapter" / ADAPTER_FILE, framework="pt") as f:
        keys = list(f.keys())
    assert keys and all(
        "vera_lambda_" in k or k.startswith(("base_model.model.classifier.", "base_model.model.bert.pooler.dense."))
        for k in keys
    ), keys
    assert not any("vera_A" in k or "vera_B" in k for k in keys)

    reloaded = PeftModel.from_pretrained(tiny_bert(), tmp_path / "adapter")
    for kind in ("vera_A", "vera_B"):
        assert torch.equal(getattr(reloaded.base_model, kind)["default"], getattr(vera.base_model, kind)["default"])
    torch.testing.assert_close(_logits(reloaded, token_batch(3)), _logits(vera, token_batch(3)), rtol=0, atol=0)

    sizes = adapter_bytes(tmp_path / "adapter")
    counts = count_parameters(vera)
    assert sizes["projection_bytes"] == 0
    assert sizes["vector_bytes"] == 4 * counts["adapter_params"]
    assert sizes["head_bytes"] == 4 * counts["head_params"]
    assert sizes["adapter_file_bytes"] > sizes["vector_bytes"] + sizes["head_bytes"]


def test_saved_projection_is_counted_separately(tmp_path):
    vera = build_vera(tiny_bert(), VeraFields(r=16))
    save_adapter(vera, tmp_path / "adapter")
    assert adapter_bytes(tmp_path / "adapter")["projection_bytes"] == 4 * (16 * 32 + 32 * 16)


@pytest.mark.parametrize("scheme", ["kaiming_uniform", "kaiming_normal", "uniform"])
def test_projection_inits(scheme):
    t = init_projection((256, 400), scheme, torch.Generator().manual_seed(0))
    if scheme == "kaiming_uniform":
        bound = math.sqrt(6 / 400)
        assert t.abs().max() <= bound and t.abs().max() > 0.95 * bound
    elif scheme == "kaiming_normal":
        assert abs(t.std().item() - math.sqrt(2 / 400)) < 0.002
    else:
        assert t.min() >= 0 and t.max() <= 0.1 and abs(t.mean().item() - 0.05) < 0.002


def test_default_init_matches_peft_regeneration():
    """Our kaiming_uniform draw equals peft's own A/B for the same seed (A first, then B)."""
    vera = build_vera(tiny_bert(), VeraFields(r=16, projection_seed=5))
    gen = torch.Generator().manual_seed(5)
    assert torch.equal(init_projection((16, 32), "kaiming_uniform", gen), vera.base_model.vera_A["default"])
    assert torch.equal(init_projection((32, 16), "kaiming_uniform", gen), vera.base_model.vera_B["default"])


def test_other_init_is_saved_and_plain_peft_reloads_it(tmp_path):
    vera = build_vera(tiny_bert(), VeraFields(r=16, projection_init="uniform"))
    a = vera.base_model.vera_A["default"]
    assert a.min() >= 0 and a.max() <= 0.1
    randomize_adapter(vera, "default", seed=4)
    save_adapter(vera, tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(tiny_bert(), tmp_path / "adapter")
    torch.testing.assert_close(_logits(reloaded, token_batch(3)), _logits(vera, token_batch(3)), rtol=0, atol=0)


@pytest.mark.parametrize(
    "vectors, frozen, trained, trained_value", [("only_b", "d", "b", 0.0), ("only_d", "b", "d", 0.0)]
)
def test_vector_ablations(vectors, frozen, trained, trained_value):
    vera = build_vera(tiny_bert(), VeraFields(r=8, vectors=vectors))
    layer = vera.base_model.model.bert.encoder.layer[1].attention.self.value
    vec = {"d": layer.vera_lambda_d["default"], "b": layer.vera_lambda_b["default"]}
    assert not vec[frozen].requires_grad and torch.equal(vec[frozen], torch.ones_like(vec[frozen]))
    assert vec[trained].requires_grad and torch.all(vec[trained] == trained_value)
    n_trained = 8 if trained == "d" else 32
    assert count_parameters(vera)["adapter_params"] == 4 * n_trained
    torch.testing.assert_close(_logits(vera, token_batch(2)), _logits(tiny_bert(), token_batch(2)), rtol=0, atol=0)


def test_unique_projections_differ_per_layer_and_round_trip(tmp_path):
    vera = build_vera(tiny_bert(), VeraFields(r=8, shared_projection=False))
    layers = [vera.base_model.model.bert.encoder.layer[i].attention.self for i in (0, 1)]
    a0, a1 = (lay.query.vera_A["default"] for lay in layers)
    assert a0.shape == (8, 32) and not torch.equal(a0, a1)
    randomize_adapter(vera, "default", seed=5)
    save_adapter(vera, tmp_path / "adapter")
    reloaded = load_adapter(tiny_bert(), tmp_path / "adapter")
    torch.testing.assert_close(_logits(reloaded, token_batch(3)), _logits(vera, token_batch(3)), rtol=0, atol=0)


def test_merge_gives_same_outputs_on_gpt2_conv1d():
    vera = build_vera(tiny_gpt2(), VeraFields(r=8, task="causal_lm"))
    randomize_adapter(vera, "default", seed=6)
    batch = token_batch(2)
    before = _logits(vera, batch)
    merged = vera.merge_and_unload()
    torch.testing.assert_close(_logits(merged, batch), before, rtol=1e-4, atol=1e-4)


def test_randomize_adapters_covers_every_adapter_and_leaves_the_base():
    import copy

    model = build_vera(tiny_bert(), VeraFields(r=8), adapter_name="a")
    model.add_adapter("b", copy.deepcopy(model.peft_config["a"]))
    base = {n: p.clone() for n, p in model.named_parameters() if "vera_" not in n and "modules_to_save" not in n}
    randomize_adapters(model)
    b_vectors = [p for n, p in model.named_parameters() if "vera_lambda_b" in n]
    assert len(b_vectors) > 2 and all(p.abs().sum() > 0 for p in b_vectors)  # b starts at 0 in both adapters
    outs = []
    for name in ("a", "b"):  # "b" is not the active (trainable) adapter, yet it is randomised too
        model.set_adapter(name)
        outs.append(_logits(model.eval(), token_batch(3)))
    assert not torch.allclose(outs[0], outs[1])
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if n in base)
    lora = build_lora(tiny_bert(), LoraFields(r=4))
    randomize_adapters(lora, scale=0.5)
    assert all(p.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n)
