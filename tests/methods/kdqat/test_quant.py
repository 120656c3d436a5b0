import pytest
import torch

from tailor.methods.kdqat.quant import (
    ActSpec,
    WeightSpec,
    fake_quant_act,
    fake_quant_weight,
    twn_codes,
    uniform_codes,
    weight_codes,
)

W = torch.tensor([[0.1, -0.5, 0.9], [0.05, -1.2, 0.3]])


def test_twn_layerwise_golden():
    # mean|w| = 3.05/6, Δ = 0.7·0.508333 = 0.355833; kept |w| = 0.5, 0.9, 1.2 → α = 2.6/3
    codes, alpha = twn_codes(W)
    assert codes.tolist() == [[0, -1, 1], [0, -1, 0]]
    assert alpha.item() == pytest.approx(2.6 / 3, abs=1e-6)


def test_twn_rowwise_golden():
    # row 0: Δ = 0.35 keeps 0.5, 0.9 → α = 0.7; row 1: Δ = 0.361667 keeps 1.2 → α = 1.2
    codes, alpha = twn_codes(W, rowwise=True)
    assert codes.tolist() == [[0, -1, 1], [0, -1, 0]]
    assert alpha.flatten().tolist() == pytest.approx([0.7, 1.2], abs=1e-6)


def test_uniform_4bit_golden():
    # qmax = 7, s = 0.7/7 = 0.1; -0.32/0.1 → -3, 0.16/0.1 → 2
    codes, step = uniform_codes(torch.tensor([0.7, -0.32, 0.16, 0.0]), bits=4)
    assert codes.tolist() == [7, -3, 2, 0]
    assert step.item() == pytest.approx(0.1)


def test_weights_are_clipped_before_quantizing():
    codes, alpha = weight_codes(torch.tensor([4.0, -4.0, 0.0, 0.0]), WeightSpec(clip=2.5))
    assert codes.tolist() == [1, -1, 0, 0] and alpha.item() == pytest.approx(2.5)


def test_weight_ste_passes_gradient_only_inside_clip():
    w = torch.tensor([3.0, -0.5, 1.0, -2.6], requires_grad=True)
    fake_quant_weight(w, WeightSpec()).sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_act_quant_golden_and_ste():
    # clip to ±2.5, s = 127/2.5 = 50.8: 0.5·s = 25.4 → 25, 1.0·s → 51, 2.0·s → 102
    x = torch.tensor([0.5, -3.0, 1.0, 2.0], requires_grad=True)
    y = fake_quant_act(x, ActSpec(8, 2.5))
    assert y.tolist() == pytest.approx([25 / 50.8, -2.5, 51 / 50.8, 102 / 50.8], abs=1e-6)
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "spec", [WeightSpec(), WeightSpec(rowwise=True), WeightSpec("uniform", 4), WeightSpec("uniform", 8, rowwise=True)]
)
def test_quantizers_are_idempotent(spec):
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(0)) * 0.2
    once = fake_quant_weight(w, spec)
    assert torch.allclose(fake_quant_weight(once, spec), once, atol=1e-6)
    levels = 3 if spec.bits == 2 else 2**spec.bits - 1
    assert once.unique().numel() <= levels * (w.shape[0] if spec.rowwise else 1)


def test_invalid_specs_name_the_problem():
    with pytest.raises(ValueError, match="twn"):
        WeightSpec("twn", 4)
    with pytest.raises(ValueError, match="2, 4 or 8"):
        WeightSpec("uniform", 3)


def test_rowwise_embedding_quantizes_only_looked_up_rows_exactly():
    from torch import nn

    from tailor.methods.kdqat.quant import QuantEmbedding

    emb = nn.Embedding(20, 8)
    q = QuantEmbedding.from_embedding(emb, WeightSpec(rowwise=True))
    ids = torch.tensor([[1, 5, 5, 19]])
    full_table = fake_quant_weight(emb.weight, WeightSpec(rowwise=True))
    assert torch.allclose(q(ids), full_table[ids])
    q(ids).sum().backward()
    assert emb.weight.grad[5].abs().sum() > 0 and emb.weight.grad[0].abs().sum() == 0


def test_codes_under_bf16_autocast_are_the_fp32_codes_of_the_same_values():
    """Mixed precision must not change a single code: quantizers run as fp32 islands."""
    from tailor.engine.precision import PrecisionChoice, autocast
    from tailor.methods.kdqat.quant import ActSpec, WeightSpec, fake_quant_act, twn_codes, uniform_codes, weight_codes

    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 7, 33, generator=gen) * 3).to(torch.bfloat16)  # what a bf16 matmul hands the next layer
    w = torch.randn(33, 17, generator=gen).to(torch.bfloat16)
    reference_act = fake_quant_act(x.float(), ActSpec(bits=8))
    reference = [twn_codes(w.float(), rowwise=True), uniform_codes(w.float(), 4), weight_codes(w.float(), WeightSpec())]
    with autocast(PrecisionChoice("bf16", "requested"), "cpu"):
        act = fake_quant_act(x, ActSpec(bits=8))
        got = [twn_codes(w, rowwise=True), uniform_codes(w, 4), weight_codes(w, WeightSpec())]
    assert torch.equal(act.float(), reference_act.to(torch.bfloat16).float())
    for (codes, scale), (ref_codes, ref_scale) in zip(got, reference):
        assert torch.equal(codes, ref_codes) and scale.dtype is torch.float32 and torch.equal(scale, ref_scale)
