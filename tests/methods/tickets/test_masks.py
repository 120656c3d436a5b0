"""Masks: golden patterns, exact sparsity, holding masks fixed (weights and optimizer state), I/O."""

import pytest
import torch

from tailor.methods.tickets.config import MaskSpec
from tailor.methods.tickets.masks import Mask, MaskEnforcer, apply_masks, channel_followers, masks_from_scores, nm_mask
from tailor.methods.tickets.pruning import omp

SCORES = {"a.weight": torch.tensor([[1.0, -5.0], [3.0, 0.5]]), "b.weight": torch.tensor([[2.0, -4.0, 0.1]])}


def test_unstructured_global_golden():
    masks = masks_from_scores({k: v.abs() for k, v in SCORES.items()}, MaskSpec(sparsity=0.5))
    # 7 weights, keep round(3.5) = 4: the global top |.| are 5, 4, 3, 2
    assert masks["a.weight"].tolist() == [[False, True], [True, False]]
    assert masks["b.weight"].tolist() == [[True, True, False]]
    masks = masks_from_scores({k: v.abs() for k, v in SCORES.items()}, MaskSpec(sparsity=0.6))
    assert masks["a.weight"].tolist() == [[False, True], [True, False]]  # keep 3: 5, 4, 3
    assert masks["b.weight"].tolist() == [[False, True, False]]


def test_unstructured_layerwise_golden():
    masks = masks_from_scores({k: v.abs() for k, v in SCORES.items()}, MaskSpec(sparsity=0.5, scope="layerwise"))
    assert masks["a.weight"].tolist() == [[False, True], [True, False]]  # keep 2 of 4
    assert masks["b.weight"].tolist() == [[True, True, False]]  # keep round(1.5) = 2 of 3


def test_nm_golden_along_input_dim():
    w = torch.tensor([[1.0, -3.0, 2.0, 0.5, 9.0, 8.0, -7.0, 0.0]])
    assert nm_mask(w.abs(), 2, 4).tolist() == [[False, True, True, False, True, True, False, False]]
    conv = torch.randn(3, 8, 3, 3)
    m = nm_mask(conv.abs(), 2, 4)
    # every group of 4 input channels at each (out, kh, kw) keeps exactly 2
    assert (m.view(3, 2, 4, 3, 3).sum(2) == 2).all()


def test_channel_masks_cover_batchnorm_followers(make_resnet):
    model = make_resnet()
    followers = channel_followers(model)
    assert followers["resnet.blocks.0.conv1.weight"] == ["resnet.blocks.0.bn1.weight", "resnet.blocks.0.bn1.bias"]
    assert followers["resnet.stem.0.weight"] == ["resnet.stem.1.weight", "resnet.stem.1.bias"]
    assert followers["classifier.weight"] == ["classifier.bias"]
    masks = omp(model, MaskSpec(pattern="channel", sparsity=0.5))
    # default on resnet_cifar: only the block-internal convs, each losing half its channels (global ranking
    # may shift channels between layers, so check the total and that each filter is all-or-nothing)
    weights = {k: m for k, m in masks.items() if m.dim() == 4}
    assert set(weights) == {"resnet.blocks.0.conv1.weight", "resnet.blocks.1.conv1.weight"}
    alive = {k: m.flatten(1).any(1) for k, m in weights.items()}
    assert all((m.flatten(1).all(1) == alive[k]).all() for k, m in weights.items())
    assert sum(int(a.sum()) for a in alive.values()) == 12  # of 8 + 16 channels
    assert torch.equal(masks["resnet.blocks.1.bn1.bias"], alive["resnet.blocks.1.conv1.weight"])


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.99])
def test_omp_hits_requested_sparsity(make_resnet, scope, sparsity):
    model = make_resnet()
    masks = omp(model, MaskSpec(sparsity=sparsity, scope=scope))
    report = masks.report()
    assert report["sparsity"] == pytest.approx(sparsity, abs=2e-3)
    assert "classifier.weight" not in masks
    if scope == "layerwise":
        assert all(v["sparsity"] == pytest.approx(sparsity, abs=0.02) for v in report["layers"].values())
    # OMP keeps the largest magnitudes: every kept |w| >= every pruned |w| (global scope)
    if scope == "global":
        params = dict(model.named_parameters())
        kept = torch.cat([params[k].abs()[m] for k, m in masks.items()])
        pruned = torch.cat([params[k].abs()[~m] for k, m in masks.items()])
        assert kept.min() >= pruned.max()


def _train_steps(model, masks, optimizer, steps=5):
    enforcer = MaskEnforcer(model, masks)
    for _ in range(steps):
        out = model(pixel_values=torch.rand(4, 3, 8, 8), labels=torch.randint(0, 5, (4,)))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        enforcer.after_step(optimizer)
    return enforcer


@pytest.mark.parametrize("opt", ["adamw", "sgd"])
def test_masked_weights_and_optimizer_state_stay_zero(make_resnet, opt):
    model = make_resnet()
    masks = omp(model, MaskSpec(sparsity=0.7))
    if opt == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _train_steps(model, masks, optimizer)
    params = dict(model.named_parameters())
    for k, m in masks.items():
        assert (params[k][~m] == 0).all(), k
        for v in optimizer.state[params[k]].values():
            if isinstance(v, torch.Tensor) and v.shape == m.shape:
                assert (v[~m] == 0).all(), k
        assert not torch.equal(params[k][m], before[k][m])  # the survivors did train


def test_masks_round_trip_into_unpruned_model(make_resnet, tmp_path):
    model = make_resnet().eval()
    masks = omp(model, MaskSpec(sparsity=0.9, pattern="channel", include=[r"conv"]))
    apply_masks(model, masks)
    masks.save(tmp_path / "mask.safetensors", {"pattern": "channel"})
    loaded = Mask.load(tmp_path / "mask.safetensors")
    assert loaded.keys() == masks.keys() and all(torch.equal(loaded[k], masks[k]) for k in masks)
    fresh = make_resnet().eval()
    fresh.load_state_dict(make_resnet().state_dict())  # an unpruned model with the same weights
    apply_masks(fresh, loaded)
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(fresh(pixel_values=x).logits, model(pixel_values=x).logits)


def test_mask_errors_name_the_problem(make_resnet):
    model = make_resnet()
    with pytest.raises(KeyError, match="not in the model"):
        apply_masks(model, {"nope.weight": torch.ones(1, dtype=torch.bool)})
    with pytest.raises(ValueError, match="no prunable"):
        omp(model, MaskSpec(include=["does-not-exist"]))


def test_sparsity_report_lists_dead_layers():
    masks = Mask(
        {
            "a.weight": torch.zeros(2, 2, dtype=torch.bool),
            "b.weight": torch.ones(2, 2, dtype=torch.bool),
            "bn.weight": torch.zeros(2, dtype=torch.bool),
        }
    )
    report = masks.report()
    assert report["sparsity"] == 0.5 and report["dead_layers"] == ["a.weight"] and "bn.weight" not in report["layers"]


def test_nm_skips_layers_whose_input_is_not_a_multiple_of_m(make_resnet):
    masks = omp(make_resnet(), MaskSpec(pattern="nm"))
    assert "resnet.stem.0.weight" not in masks  # 3 input channels
    assert masks.sparsity == pytest.approx(0.5)


def test_mask_accepts_only_named_zero_one_tensors_and_stores_bool():
    mask = Mask({"w": torch.tensor([[1.0, 0.0], [0.0, 1.0]])})
    assert mask["w"].dtype == torch.bool and mask["w"].tolist() == [[True, False], [False, True]]
    with pytest.raises(ValueError, match="other than 0 and 1"):
        mask["v"] = torch.tensor([0.5, 1.0])
    with pytest.raises(ValueError, match="other than 0 and 1"):
        mask.update({"v": torch.tensor([2])})
    with pytest.raises(ValueError, match="parameter name"):
        Mask({"": torch.ones(1)})
    with pytest.raises(ValueError, match="torch.Tensor"):
        mask["v"] = [1, 0]


def test_mask_sparsity_overall_and_per_layer_hand_computed(tmp_path):
    mask = Mask.ones_like({"a.weight": torch.zeros(2, 5), "a.bias": torch.zeros(2)})
    mask["a.weight"][0, :3] = False  # 3 of 10 removed
    mask["b.weight"] = torch.tensor([[1, 0], [0, 0]])  # 3 of 4 removed
    assert mask.layers()["a.weight"] == {"total": 10, "kept": 7, "sparsity": pytest.approx(0.3)}
    assert mask.layers()["b.weight"]["sparsity"] == pytest.approx(0.75)
    assert mask.sparsity == pytest.approx(6 / 14) and "a.bias" not in mask.layers()
    mask.save(tmp_path / "m.safetensors", {"scheme": "omp"})
    again = Mask.load(tmp_path / "m.safetensors")
    assert isinstance(again, Mask) and again.report() == mask.report()
