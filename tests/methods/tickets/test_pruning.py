"""OMP/A-IMP/LMP on tiny models: STE gradient, A-IMP schedule and rewinding, any conv/linear model."""

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, ViTConfig, ViTForImageClassification

from tailor.methods.tickets.config import MaskSpec
from tailor.methods.tickets.masks import Mask
from tailor.methods.tickets.pruning import aimp, aimp_schedule, attach_scores, lmp, omp


def test_aimp_schedule_constant_rate():
    s = aimp_schedule(0.99, 2)
    assert s == pytest.approx([0.9, 0.99])  # keep 10% then 1%: rate 0.9 per round
    # IMP's 20% per round: 0.2, 0.36, 0.488, then capped at 0.5
    assert aimp_schedule(0.5, rounds=99, rate=0.2) == pytest.approx([0.2, 0.36, 0.488, 0.5])
    assert aimp_schedule(0.36, rounds=99, rate=0.2) == pytest.approx([0.2, 0.36])


def test_aimp_prunes_trained_magnitudes_and_rewinds(make_resnet):
    model = make_resnet()
    theta_pre = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []

    def train_round(m, masks, r):  # stand-in for adversarial training: perturb the surviving weights
        seen.append(None if masks is None else masks.sparsity)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p))

    masks = aimp(model, MaskSpec(sparsity=0.9, scope="layerwise"), rounds=2, rewind=True, train_round=train_round)
    assert seen[0] is None and seen[1] == pytest.approx(1 - 0.1**0.5, abs=0.02)
    assert masks.sparsity == pytest.approx(0.9, abs=0.01)
    params = dict(model.named_parameters())
    for k, m in masks.items():  # rewound: the ticket is m * theta_pre
        assert torch.equal(params[k], theta_pre[k] * m)
    # the mask is not OMP's on theta_pre (it came from trained magnitudes)
    assert any(
        not torch.equal(masks[k], m) for k, m in omp(make_resnet(), MaskSpec(sparsity=0.9, scope="layerwise")).items()
    )


def test_lmp_ste_gradient_golden():
    layer = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 3.0, -4.0]]))
    model = nn.Sequential(layer)
    handle = attach_scores(model, MaskSpec(sparsity=0.5, scope="layerwise", exclude=[]), init="magnitude")
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    y = model(x).sum()  # mask keeps |3|, |-4|: y = 3 - 4 = -1
    assert y.item() == pytest.approx(-1.0)
    y.backward()
    scores = layer.parametrizations.weight[0].scores
    # STE: dy/ds = dy/dm = w * x for every score, selected or not
    assert scores.grad.tolist() == [[1.0, -2.0, 3.0, -4.0]]
    assert layer.parametrizations.weight.original.grad is None  # theta_pre is frozen
    masks = handle.detach()
    assert masks["0.weight"].tolist() == [[False, False, True, True]]
    assert layer.weight.tolist() == [[1.0, -2.0, 3.0, -4.0]]  # parametrization removed, theta_pre intact


def test_lmp_learns_a_different_mask_on_frozen_weights(make_resnet):
    model = make_resnet()
    theta_pre = {k: v.clone() for k, v in model.named_parameters()}
    spec = MaskSpec(sparsity=0.7)
    start = omp(model, spec)

    def train(m):
        for n, p in m.named_parameters():
            p.requires_grad_(n.endswith(".scores"))
        opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1.0)
        for _ in range(3):
            m(pixel_values=torch.rand(8, 3, 8, 8), labels=torch.randint(0, 5, (8,))).loss.backward()
            opt.step()
            opt.zero_grad()

    masks = lmp(model, spec, "magnitude", train)
    assert masks.sparsity == pytest.approx(0.7, abs=2e-3)
    assert any(not torch.equal(masks[k], start[k]) for k in masks)
    params = dict(model.named_parameters())
    for k, m in masks.items():
        assert torch.equal(params[k], theta_pre[k] * m)


def _tiny_vit():
    cfg = ViTConfig(
        image_size=16,
        patch_size=4,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    return ViTForImageClassification(cfg), {"pixel_values": torch.rand(2, 3, 16, 16)}


def _tiny_bert():
    cfg = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=3
    )
    return BertForSequenceClassification(cfg), {"input_ids": torch.randint(0, 50, (2, 7))}


@pytest.mark.parametrize("build", [_tiny_vit, _tiny_bert])
@pytest.mark.parametrize("pattern", ["unstructured", "channel", "nm"])
def test_schemes_work_on_hf_transformers(build, pattern):
    model, inputs = build()
    spec = MaskSpec(pattern=pattern, **({} if pattern == "nm" else {"sparsity": 0.6}))
    masks = omp(model, spec)
    assert "classifier.weight" not in masks
    assert masks.sparsity == pytest.approx(spec.sparsity, abs=0.02)
    handle = attach_scores(model, spec)
    model(**inputs).logits.sum().backward()
    assert all(p.scores.grad is not None for _, p in handle.scored.values())
    assert handle.detach().keys() == masks.keys()


class DepthwiseBlock(nn.Module):
    """An MBConv-like block (expand 1x1, depthwise 3x3, project 1x1, each followed by BatchNorm)."""

    def __init__(self):
        super().__init__()
        self.expand = nn.Conv2d(4, 8, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.depthwise_bn = nn.BatchNorm2d(8)
        self.project = nn.Conv2d(8, 4, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = torch.relu(self.expand_bn(self.expand(x)))
        x = torch.relu(self.depthwise_bn(self.depthwise(x)))
        return self.project_bn(self.project(x))


def test_depthwise_convs_channel_followers_and_nm_skip():
    model = DepthwiseBlock()
    masks = omp(model, MaskSpec(pattern="channel", sparsity=0.5, scope="layerwise"))
    assert torch.equal(masks["depthwise_bn.weight"], masks["depthwise.weight"].flatten(1).any(1))
    nm = omp(model, MaskSpec(pattern="nm"))
    assert "depthwise.weight" not in nm and {"expand.weight", "project.weight"} <= set(nm)  # depthwise fan-in is 1
    handle = attach_scores(model, MaskSpec(sparsity=0.5))
    model(torch.rand(2, 4, 6, 6)).sum().backward()
    assert set(handle.detach()) == {"expand.weight", "depthwise.weight", "project.weight"}


@pytest.mark.integration
def test_effnet_lite0_from_the_zoo():
    models = pytest.importorskip("tailor.zoo.models")
    info = models.get_info("effnet-lite0")
    if info is None or not info.available():
        pytest.skip("effnet-lite0 is not in this zoo or its package is not installed")
    model = models.load("effnet-lite0", "classifier", 3).eval()
    masks = omp(model, MaskSpec(sparsity=0.9))
    assert masks.sparsity == pytest.approx(0.9, abs=1e-3) and "classifier.weight" not in masks
    from tailor.methods.tickets.masks import apply_masks

    apply_masks(model, masks)
    assert torch.isfinite(model(pixel_values=torch.rand(1, 3, 64, 64)).logits).all()


def test_every_scheme_of_the_config_is_a_registered_strategy():
    from typing import get_args

    from tailor.methods.tickets.config import DrawTicketConfig
    from tailor.methods.tickets.strategies import STRATEGIES, get_strategy

    assert set(STRATEGIES) == set(get_args(DrawTicketConfig.model_fields["scheme"].annotation))
    with pytest.raises(ValueError, match="valid: omp, aimp, lmp"):
        get_strategy("random")


def test_strategies_prune_through_one_interface(make_resnet):
    from tailor.methods.tickets.config import DrawTicketConfig
    from tailor.methods.tickets.masks import Mask
    from tailor.methods.tickets.strategies import get_strategy

    calls = []

    def fit(model, mask=None, *, round=None, adversarial=False, head_lr=None):
        calls.append((round, adversarial, head_lr, None if mask is None else round_sparsity(mask)))
        return {"steps": 0}

    def round_sparsity(mask):
        return pytest.approx(mask.sparsity, abs=0.02)

    cfg = DrawTicketConfig(sparsity=0.75, scope="layerwise", rounds=2, head_lr=0.5)
    for scheme in ("omp", "aimp", "lmp"):
        model, calls = make_resnet(), []
        strategy = get_strategy(scheme)
        mask = strategy.prune(model, None, cfg, fit)
        assert isinstance(mask, Mask) and mask.sparsity == pytest.approx(0.75, abs=0.01)
        params = dict(model.named_parameters())
        assert all((params[k][~m] == 0).all() for k, m in mask.items())  # the model is left as the ticket
        if scheme == "omp":
            assert calls == [] and strategy.summary(calls) == {}
        elif scheme == "aimp":  # round 0 unmasked, round 1 with the first round's mask (keep 0.5)
            assert calls == [(0, True, None, None), (1, True, None, 0.5)]
            assert strategy.summary([{"a": 1}, {"b": 2}]) == {"rounds": [{"a": 1}, {"b": 2}]}
        else:
            assert calls == [(None, False, 0.5, None)] and strategy.new_head
            assert all(p.requires_grad for p in model.parameters())


def test_aimp_at_20_percent_per_round_hand_computed():
    """|w| = 1..10, rate 0.2 to sparsity 0.36: round 1 keeps 8 (drops |1|, |2|), round 2 keeps round(6.4) = 6."""
    from tailor.methods.tickets.config import DrawTicketConfig
    from tailor.methods.tickets.strategies import get_strategy

    def model():
        layer = nn.Linear(10, 1, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[1.0, -2, 3, -4, 5, -6, 7, -8, 9, -10]]))
        return nn.Sequential(layer)

    kept = []

    def fit(m, mask=None, *, round=None, adversarial=False, head_lr=None):
        kept.append(None if mask is None else mask["0.weight"].int().tolist())
        return {}

    cfg = DrawTicketConfig(sparsity=0.36, rate=0.2, exclude=[])
    mask = get_strategy("aimp").prune(model(), None, cfg, fit)
    assert kept == [None, [[0, 0, 1, 1, 1, 1, 1, 1, 1, 1]]]
    assert mask["0.weight"].int().tolist() == [[0, 0, 0, 0, 1, 1, 1, 1, 1, 1]]
    # continuing from that 8-weight ticket to 0.488: survivors 8 -> round(6.4) = 6 -> round(5.12) = 5
    start = Mask({"0.weight": torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1, 1]])})
    kept.clear()
    mask = get_strategy("aimp").prune(model(), start, cfg.model_copy(update={"sparsity": 0.488}), fit)
    assert [int(torch.tensor(k).sum()) for k in kept] == [8, 6]
    assert mask["0.weight"].int().tolist() == [[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]]


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 1, bias=False), nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
            self.b.weight.fill_(1.0)

    def forward(self, x):
        return self.a(x) + self.b(x)


@pytest.mark.parametrize(
    "rank,scope,a_mask,b_mask",
    [
        ("abs", "layerwise", [1, 0, 1, 0], [0, 0, 1, 1]),  # edge-popup: per layer, top-2 |s|: a: |-5|, |2|; b: 3, 4
        ("signed", "global", [0, 1, 1, 0], [0, 0, 1, 1]),  # top-4 signed of all 8: 4, 3, 2, 1
        ("signed", "layerwise", [0, 1, 1, 0], [0, 0, 1, 1]),
        ("abs", "global", [1, 0, 1, 0], [0, 0, 1, 1]),  # top-4 |s| of all 8: 5, 4, 3, 2
    ],
)
def test_lmp_ranking_and_ste_gradient_hand_computed(rank, scope, a_mask, b_mask):
    model = TwoLayers()
    handle = attach_scores(model, MaskSpec(sparsity=0.5, scope=scope, exclude=[]), rank=rank)
    scores = {"a": torch.tensor([[-5.0, 1.0, 2.0, -0.5]]), "b": torch.tensor([[0.1, -0.2, 3.0, 4.0]])}
    with torch.no_grad():
        for name, s in scores.items():
            getattr(model, name).parametrizations.weight[0].scores.copy_(s)
    y = model(torch.ones(1, 4)).sum()
    masks = handle.masks()
    assert masks["a.weight"].int().tolist() == [a_mask] and masks["b.weight"].int().tolist() == [b_mask]
    assert y.item() == pytest.approx(sum(w * m for w, m in zip([1, 2, 3, 4], a_mask)) + sum(b_mask))
    y.backward()
    grad = {n: getattr(model, n).parametrizations.weight[0].scores.grad.tolist() for n in scores}
    if rank == "abs":  # dy/ds = w * x * sign(s) for every score (edge-popup's gradient through |s|)
        assert grad == {"a": [[-1.0, 2.0, 3.0, -4.0]], "b": [[1.0, -1.0, 1.0, 1.0]]}
    else:  # dy/ds = w * x
        assert grad == {"a": [[1.0, 2.0, 3.0, 4.0]], "b": [[1.0, 1.0, 1.0, 1.0]]}
