"""A batch whose rows use different VeRA adapters equals running each row alone with its adapter."""

import copy

import pytest
import torch

from tailor.methods.vera.adapters import build_vera, save_adapter
from tailor.methods.vera.config import VeraFields
from tailor.methods.vera.multi_adapter import MixedVeraBatch

from .conftest import randomize_adapter, tiny_bert, tiny_dinov2, tiny_gpt2, tiny_llama, token_batch


def _with_adapters(base, cfg, n):
    model = build_vera(base, cfg, adapter_name="a0")
    for i in range(1, n):
        model.add_adapter(f"a{i}", copy.deepcopy(model.peft_config["a0"]))
    for i in range(n):
        randomize_adapter(model, f"a{i}", seed=10 + i)
    return model.eval()


def _one_by_one(model, names, inputs):
    outs = []
    with torch.no_grad():
        for row, name in enumerate(names):
            model.set_adapter(name)
            outs.append(model(**{k: v[row : row + 1] for k, v in inputs.items()}).logits)
    return torch.cat(outs)


@pytest.mark.parametrize(
    "make, cfg",
    [
        (tiny_bert, VeraFields(r=64)),
        (tiny_llama, VeraFields(r=16, task="causal_lm")),
        (tiny_gpt2, VeraFields(r=16, task="causal_lm")),
    ],
)
def test_mixed_batch_equals_per_row_runs(make, cfg):
    model = _with_adapters(make(), cfg, n=3)
    names = ["a2", "a0", "a1", "a1", "a0", "a2"]
    inputs = token_batch(len(names))
    mixed = MixedVeraBatch(model, precision="fp32")(names, **inputs).logits
    expected = _one_by_one(model, names, inputs)
    torch.testing.assert_close(mixed, expected, rtol=1e-5, atol=1e-5)
    # the adapters really differ, so the test would fail if rows got the wrong adapter
    model.set_adapter("a0")
    with torch.no_grad():
        assert not torch.allclose(model(**inputs).logits, expected, atol=1e-3)


def test_mixed_batch_on_vision_model_with_per_adapter_heads():
    model = _with_adapters(tiny_dinov2(), VeraFields(r=32), n=4)
    names = ["a3", "a1", "a0", "a2", "a3"]
    pixels = torch.randn(len(names), 3, 28, 28)
    mixed = MixedVeraBatch(model, precision="fp32")(names, pixel_values=pixels).logits
    torch.testing.assert_close(mixed, _one_by_one(model, names, {"pixel_values": pixels}), rtol=1e-5, atol=1e-5)


def test_mixed_batch_from_saved_dirs_and_indices(tmp_path):
    model = _with_adapters(tiny_bert(), VeraFields(r=16, save_projection=False), n=2)
    for name in ("a0", "a1"):
        model.set_adapter(name)
        save_adapter(model, tmp_path / name)  # saves the active adapter only
    server = MixedVeraBatch.from_pretrained(tiny_bert(), [tmp_path / "a0", tmp_path / "a1"], precision="fp32")
    assert server.names == ["a0", "a1"]
    inputs = token_batch(4)
    by_index = server([1, 0, 0, 1], **inputs).logits
    torch.testing.assert_close(by_index, _one_by_one(model, ["a1", "a0", "a0", "a1"], inputs), rtol=1e-5, atol=1e-5)


def test_mixed_batch_leaves_peft_state_untouched():
    model = _with_adapters(tiny_bert(), VeraFields(r=8), n=2)
    model.set_adapter("a1")
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    MixedVeraBatch(model)(["a0", "a1"], **token_batch(2))
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads
    assert model.active_adapter == "a1"


def test_incompatible_adapters_and_bad_rows_are_rejected():
    model = _with_adapters(tiny_bert(), VeraFields(r=8), n=2)
    server = MixedVeraBatch(model)
    with pytest.raises(KeyError, match="loaded"):
        server(["a0", "zz"], **token_batch(2))
    with pytest.raises(ValueError, match="rows"):
        server(["a0"], **token_batch(2))
    bigger = copy.deepcopy(model.peft_config["a0"])
    bigger.r = 4
    model.add_adapter("small", bigger)
    with pytest.raises(ValueError, match="differ in r"):
        MixedVeraBatch(model, ["a0", "small"])


def test_mixed_batch_in_bf16_runs_under_autocast_and_tracks_fp32():
    model = _with_adapters(tiny_bert(), VeraFields(r=64), n=3)
    names = ["a2", "a0", "a1", "a1"]
    inputs = token_batch(len(names))
    fp32 = MixedVeraBatch(model, precision="fp32")(names, **inputs).logits
    bf16 = MixedVeraBatch(model, precision="bf16")(names, **inputs).logits
    assert not torch.equal(bf16.float(), fp32)  # the forward really ran in bf16
    # 8 significant bits: logits of a 2-layer model agree to a few bf16 rounding steps (2^-8 each)
    torch.testing.assert_close(bf16.float(), fp32, rtol=0.05, atol=0.05)
