import math

import pytest
import torch

from tailor.methods.kdqat.config import DistillConfig
from tailor.methods.kdqat.losses import (
    attention_map_kl,
    attention_score_mse,
    ground_truth_ce,
    layerwise_mse,
    prediction_loss,
    probs_at_temperature,
    soft_cross_entropy,
    unified_map_output,
)


def test_soft_cross_entropy_golden():
    # target (0.5, 0.5); log_softmax(1, 0) = (1 - log(1+e), -log(1+e))
    got = soft_cross_entropy(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]))
    lse = math.log(1 + math.e)
    assert got.item() == pytest.approx(0.5 * (lse - 1) + 0.5 * lse, abs=1e-6)


def test_soft_cross_entropy_temperature_softens_both_sides():
    got = soft_cross_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]]), temperature=2.0)
    assert got.item() == pytest.approx(soft_cross_entropy(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2)).item())


def test_prediction_loss_is_mse_for_regression():
    assert prediction_loss(torch.tensor([[3.0]]), torch.tensor([[1.0]])).item() == pytest.approx(4.0)


def test_layerwise_mse_sums_layer_means():
    # layer 1: mean(1, 4) = 2.5; layer 2: (3-1)^2 = 4
    got = layerwise_mse([torch.tensor([1.0, 2.0]), torch.tensor([3.0])], [torch.zeros(2), torch.tensor([1.0])])
    assert got.item() == pytest.approx(6.5)


def test_score_mse_zeroes_mask_entries():
    # masked entries (−10000 / finfo.min) become 0 on both sides: mean((1-2)^2, 0) = 0.5
    s = torch.tensor([[[[1.0, -10000.0]]]])
    t = torch.tensor([[[[2.0, torch.finfo(torch.float32).min]]]])
    assert attention_score_mse([s], [t]).item() == pytest.approx(0.5)


TEACHER = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])
STUDENT = torch.tensor([[[[0.25, 0.75], [0.5, 0.5]]]])


def test_map_kl_golden_full_length():
    row0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    row1 = math.log(2.0) + 1e-8 * math.log(1e-8 / 0.5)  # teacher 0 is clamped to 1e-8
    assert attention_map_kl([STUDENT], [TEACHER]).item() == pytest.approx((row0 + row1) / 2, abs=1e-6)


def test_map_kl_golden_masks_padding_and_divides_by_length():
    # only the (0, 0) pair is real: 0.5·log(0.5/0.25), divided by length 1
    got = attention_map_kl([STUDENT], [TEACHER], attention_mask=torch.tensor([[1, 0]]))
    assert got.item() == pytest.approx(0.5 * math.log(2.0), abs=1e-6)


def test_map_kl_averages_heads_and_batch_and_sums_layers():
    teacher = torch.cat([TEACHER, TEACHER.flip(-1)], dim=1)  # 2 heads
    student = torch.cat([STUDENT, STUDENT.flip(-1)], dim=1)
    one = attention_map_kl([STUDENT], [TEACHER])
    assert attention_map_kl([student, student], [teacher, teacher]).item() == pytest.approx(2 * one.item())


def test_map_kl_is_zero_for_identical_maps_and_has_gradient():
    s = torch.softmax(torch.randn(2, 3, 4, 4), -1).requires_grad_()
    assert attention_map_kl([s], [s.detach()]).item() == pytest.approx(0.0, abs=1e-6)
    attention_map_kl([s], [torch.softmax(torch.randn(2, 3, 4, 4), -1)]).backward()
    assert s.grad.abs().sum() > 0


def test_probs_at_temperature():
    got = probs_at_temperature(torch.tensor([2.0, 0.0]), tau=2.0)
    assert got[0].item() == pytest.approx(math.e / (math.e + 1))


def test_unified_losses_golden():
    assert unified_map_output(torch.tensor(2.0), torch.tensor(3.0), 0.5, "sm1").item() == pytest.approx(3.5)
    assert unified_map_output(torch.tensor(2.0), torch.tensor(3.0), 0.5, "sm2").item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="sm1"):
        unified_map_output(torch.tensor(2.0), torch.tensor(3.0), 0.5, "sm3")


def test_ground_truth_ce():
    assert ground_truth_ce(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).item() == pytest.approx(math.log(2))


def test_layer_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same non-zero number"):
        layerwise_mse([torch.zeros(1)], [])


@pytest.mark.parametrize(
    "preset, expected",
    [
        ("ternarybert", {"pred": 1.0, "rep": 1.0, "score": 1.0}),
        ("map", {"pred": 1.0, "rep": 1.0, "map": 1.0}),
        ("output", {"pred": 1.0, "rep": 1.0, "output": 1.0}),
        ("sm1", {"pred": 1.0, "rep": 1.0, "map": 1.0, "output": 0.3}),
        ("sm2", {"pred": 1.0, "rep": 1.0, "map": 0.3, "output": 1.0}),
    ],
)
def test_preset_weights(preset, expected):
    assert DistillConfig(preset=preset, beta=0.3).term_weights() == expected


def test_weight_overrides_and_unknown_terms():
    assert DistillConfig(preset="map", weights={"gt": 1.0, "rep": 0.0}).term_weights() == {
        "pred": 1.0,
        "map": 1.0,
        "gt": 1.0,
    }
    with pytest.raises(ValueError, match="score"):
        DistillConfig(weights={"bogus": 1.0})
