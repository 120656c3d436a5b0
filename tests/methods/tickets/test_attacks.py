"""PGD/FGSM: golden values on a linear model and a cross-check against torchattacks (independent code)."""

import pytest
import torch
from torch import nn

from tailor.methods.tickets.attacks import PixelSpace, fgsm, pgd, robust_accuracy
from tailor.methods.tickets.config import AttackConfig

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


class SumLogits(nn.Module):
    """logits = [0, sum(x)]: with label 0 the loss grows with every pixel, so grad sign is +1."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack([torch.zeros_like(s), s], dim=1)


def test_fgsm_and_pgd_golden_on_linear_model():
    x = torch.tensor([[[[0.1, 0.5], [0.99, 0.0]]]])
    y = torch.tensor([0])
    expected = torch.tensor([[[[0.2, 0.6], [1.0, 0.1]]]])  # +eps, clipped at 1
    assert torch.allclose(fgsm(SumLogits(), x, y, eps=0.1), expected)
    # 3 PGD steps of 0.05 with eps 0.1 end on the same point (projection onto the ball, then [0, 1])
    assert torch.allclose(pgd(SumLogits(), x, y, eps=0.1, alpha=0.05, steps=3, random_start=False), expected)
    # l2: the gradient is all ones, so the step is alpha * 1/2 per pixel (4 pixels, norm 2)
    l2 = pgd(SumLogits(), x, y, norm="l2", eps=1.0, alpha=0.2, steps=1, random_start=False)
    assert torch.allclose(l2, (x + 0.1).clamp(0, 1))


class ReferenceNormalized(nn.Module):
    """The test's own [0, 1] -> logits wrapper (written independently of PixelSpace)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        return self.model(pixel_values=(x - mean) / std).logits


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_matches_torchattacks(norm, make_resnet):
    torchattacks = pytest.importorskip("torchattacks")
    model = make_resnet().eval()
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])
    ref_model = ReferenceNormalized(model).eval()  # torchattacks restores the wrapper's mode on exit
    if norm == "linf":
        ref = torchattacks.PGD(ref_model, eps=8 / 255, alpha=2 / 255, steps=5, random_start=False)(x, y)
        eps, alpha = 8 / 255, 2 / 255
    else:
        ref = torchattacks.PGDL2(ref_model, eps=0.5, alpha=0.1, steps=5, random_start=False)(x, y)
        eps, alpha = 0.5, 0.1
    ours = pgd(PixelSpace(model, MEAN, STD), x, y, norm=norm, eps=eps, alpha=alpha, steps=5, random_start=False)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert not torch.allclose(ours, x)


def test_fgsm_matches_torchattacks(make_resnet):
    torchattacks = pytest.importorskip("torchattacks")
    model = make_resnet().eval()
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([4, 3, 2, 1])
    ref = torchattacks.FGSM(ReferenceNormalized(model).eval(), eps=4 / 255)(x, y)
    assert torch.allclose(fgsm(PixelSpace(model, MEAN, STD), x, y, eps=4 / 255), ref, atol=1e-6)


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_random_start_stays_in_ball_and_box(norm, eps, make_resnet):
    model = PixelSpace(make_resnet().eval(), MEAN, STD)
    x = torch.rand(6, 3, 16, 16)
    y = torch.arange(6) % 5
    adv = pgd(
        model,
        x,
        y,
        norm=norm,
        eps=eps,
        alpha=eps / 4,
        steps=4,
        random_start=True,
        generator=torch.Generator().manual_seed(0),
    )
    d = (adv - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert (size <= eps + 1e-6).all() and adv.min() >= 0 and adv.max() <= 1
    loss = nn.functional.cross_entropy
    assert loss(model(adv), y) > loss(model(x), y)


def test_robust_accuracy_never_exceeds_clean(make_resnet):
    model = PixelSpace(make_resnet(), MEAN, STD)
    batches = [(torch.rand(8, 3, 16, 16), torch.randint(0, 5, (8,))) for _ in range(2)]
    out = robust_accuracy(model, batches, AttackConfig(eps="16/255", steps=3))
    assert 0 <= out["robust_accuracy"] <= out["accuracy"] <= 1
    assert model.training  # mode restored


def test_pixel_space_round_trip():
    wrapper = PixelSpace(nn.Identity(), MEAN, STD)
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(wrapper.to_pixels(wrapper.normalize(x)), x, atol=1e-6)
