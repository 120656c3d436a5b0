import numpy as np
import pytest

from tailor.engine.metrics import classification_metrics


def test_metrics_golden_values():
    # predictions 0,0,1,1,2 vs labels 0,1,1,1,2 -> accuracy 4/5
    logits = np.eye(3)[[0, 0, 1, 1, 2]] * 5.0
    m = classification_metrics(logits, np.array([0, 1, 1, 1, 2]))
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["micro_f1"] == pytest.approx(0.8)
    # per-class F1: class0 P=1/2 R=1 -> 2/3; class1 P=1 R=2/3 -> 0.8; class2 -> 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 1.0) / 3)
    assert m["n"] == 5 and 0 < m["mcc"] < 1
