import math

import pytest
import torch

from tailor.methods.selfdistill.losses import (
    distill_loss,
    masked_lm_loss,
    masked_lm_loss_at,
    masked_patch_loss,
    prediction_kl,
)


def test_distill_loss_golden_sum_over_features_mean_over_examples():
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    teacher = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # ex 1: 1² + 2² = 5; ex 2: 2² + 3² = 13; mean over examples = 9 (a per-dimension mean would give 4.5)
    assert distill_loss(student, teacher).item() == pytest.approx(9.0)


def test_distill_loss_token_matrix_is_squared_frobenius():
    student = torch.zeros(2, 3, 2)
    teacher = torch.ones(2, 3, 2)
    assert distill_loss(student, teacher).item() == pytest.approx(6.0)


def test_distill_loss_stops_teacher_gradient():
    student = torch.tensor([[1.0, 2.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0]], requires_grad=True)
    distill_loss(student, teacher).backward()
    assert teacher.grad is None
    assert torch.allclose(student.grad, torch.tensor([[2.0, 4.0]]))  # d/ds ||s - t||² = 2(s - t)


def test_distill_loss_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        distill_loss(torch.zeros(2, 3), torch.zeros(2, 4))


def test_masked_lm_loss_normalises_per_example_then_averages():
    # vocab of 2; logits give p(token 0) = e/(e+1) at every position
    logits = torch.tensor([[[1.0, 0.0]] * 4, [[1.0, 0.0]] * 4])
    labels = torch.tensor([[0, -100, -100, -100], [1, 1, 1, 0]])
    nll0 = -math.log(math.e / (math.e + 1))
    nll1 = -math.log(1 / (math.e + 1))
    expected = (nll0 + (3 * nll1 + nll0) / 4) / 2  # Eq. 2: Σ_k z_k/Z ℓ_k per example, then mean
    token_mean = (2 * nll0 + 3 * nll1) / 5
    got = masked_lm_loss(logits, labels).item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert got != pytest.approx(token_mean, rel=1e-3)


def test_masked_patch_loss_only_counts_masked_patches():
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    # patch 1: mean(1, 1) = 1; patch 2: mean(4, 0) = 2; average over the 2 masked patches = 1.5
    assert masked_patch_loss(pred, target, mask).item() == pytest.approx(1.5)


def test_prediction_kl_golden():
    teacher = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
    student = torch.log(torch.tensor([[[0.9, 0.1], [0.9, 0.1]]]))
    valid = torch.tensor([[True, False]])
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert prediction_kl(student, teacher, valid).item() == pytest.approx(expected, rel=1e-5)


def test_masked_positions_only_loss_equals_full_loss():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=g)
    labels = torch.randint(0, 7, (3, 5), generator=g)
    labels[torch.rand(3, 5, generator=g) < 0.5] = -100
    labels[0, 0] = 2
    full = masked_lm_loss(logits, labels)
    assert masked_lm_loss_at(logits[labels != -100], labels).item() == pytest.approx(full.item(), rel=1e-6)
