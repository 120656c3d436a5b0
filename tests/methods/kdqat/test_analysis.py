import math

import pytest
import torch

from tailor.methods.kdqat.analysis import (
    attention_report,
    cover_length_ratio,
    entropy_per_head,
    map_kl_per_head,
    plot_maps,
    ranking_loss,
)

T = torch.tensor([0.5, 0.3, 0.2]).view(1, 1, 1, 3)
S = torch.tensor([0.2, 0.5, 0.3]).view(1, 1, 1, 3)


def test_cover_length_ratio_golden():
    # teacher's top-1 is key 0; the student ranks it last (0-based position 2) → 2/3
    assert cover_length_ratio(S, T, k=1).item() == pytest.approx(2 / 3)
    # top-2 (keys 0, 1): positions 2 and 0 → 2/3; identical maps cover at position k-1
    assert cover_length_ratio(S, T, k=2).item() == pytest.approx(2 / 3)
    assert cover_length_ratio(T, T, k=2).item() == pytest.approx(1 / 3)


def test_ranking_loss_golden():
    # pairs (0,1): s diff -0.3 vs teacher order + → 0.3; (0,2): 0.1; (1,2): concordant → 0
    assert ranking_loss(S, T).item() == pytest.approx(0.4)
    assert ranking_loss(T, T).item() == pytest.approx(0.0)


def test_entropy_golden_and_mask():
    uniform = torch.full((1, 1, 4, 4), 0.25)
    assert entropy_per_head(uniform).item() == pytest.approx(math.log(4))
    masked = torch.tensor([[[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]]]])
    assert entropy_per_head(masked, torch.tensor([[1, 1, 0]])).item() == pytest.approx(math.log(2))


def test_map_kl_per_head_golden():
    expected = 0.5 * math.log(0.5 / 0.2) + 0.3 * math.log(0.3 / 0.5) + 0.2 * math.log(0.2 / 0.3)
    assert map_kl_per_head(S, T).item() == pytest.approx(expected, abs=1e-6)


def test_report_shapes_and_plot(tmp_path):
    maps = [torch.softmax(torch.randn(2, 3, 5, 5), -1) for _ in range(2)]
    report = attention_report(maps, [m.flip(-1) for m in maps], torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    assert set(report) == {"map_kl", "cover_length_ratio", "ranking_loss", "entropy_student", "entropy_teacher"}
    assert all(len(v) == 2 and len(v[0]) == 3 for v in report.values())
    png = plot_maps(maps[0][0, 1], maps[1][0, 1], 0, 1, tmp_path / "a.png", tokens=list("abcde"))
    assert png.read_bytes()[:4] == b"\x89PNG"
