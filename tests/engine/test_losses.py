"""Weight distances against hand-computed values, and the weighted sum of named terms."""

import pytest
import torch

from tailor.engine.losses import mars_norm, weight_l2, weight_mars, weighted_sum


def test_weight_distances_golden():
    ref = {"w": torch.zeros(2, 2), "b": torch.zeros(2)}
    params = [("w", torch.tensor([[1.0, -2.0], [0.5, 0.5]])), ("b", torch.tensor([3.0, 0.0]))]
    assert weight_l2(params, ref).item() == pytest.approx(1 + 4 + 0.25 + 0.25 + 9)
    assert mars_norm(params[0][1]).item() == pytest.approx(3.0)  # rows: |1|+|-2| = 3, 0.5+0.5 = 1
    assert weight_mars(params, ref).item() == pytest.approx(3.0)  # the 1-D bias is not a weight matrix


def test_weighted_sum_counts_unweighted_terms_once_and_drops_zero_weights():
    terms = {"a": torch.tensor(2.0), "b": torch.tensor(3.0), "c": torch.tensor(5.0)}
    assert weighted_sum(terms, {"a": 0.5, "c": 0.0}).item() == pytest.approx(0.5 * 2 + 3)
