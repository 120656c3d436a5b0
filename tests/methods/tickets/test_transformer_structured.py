"""heads / heads_ffn tickets: drawn by OMP/A-IMP/LMP, removed physically, equal to the masked model."""

import copy

import pytest
import torch

from tailor.methods.tickets.config import DrawTicketConfig, MaskSpec
from tailor.methods.tickets.masks import apply_masks
from tailor.methods.tickets.pruning import omp
from tailor.methods.tickets.strategies import get_strategy
from tailor.methods.tickets.structured import export_smaller
from tailor.methods.tickets.transformer_structured import encoder_blocks, load_sliced, save_sliced

from ..kdqat.conftest import tiny_bert, tiny_roberta, tiny_vit

TEXT = {
    "input_ids": torch.randint(3, 60, (3, 9), generator=torch.Generator().manual_seed(0)),
    "attention_mask": torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 9]),
}
IMAGE = {"pixel_values": torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))}


def _inputs(model):
    return IMAGE if hasattr(model.config, "num_channels") else TEXT


@pytest.mark.parametrize("build", [tiny_bert, tiny_roberta, tiny_vit])
@pytest.mark.parametrize("pattern", ["heads", "heads_ffn"])
def test_exported_ticket_equals_the_masked_model(build, pattern, tmp_path):
    model = build().eval()
    masks = omp(model, MaskSpec(pattern=pattern, sparsity=0.5, scope="layerwise"))
    masked = copy.deepcopy(model)
    apply_masks(masked, masks)
    small = export_smaller(masked, masks).eval()
    heads, ffn = (2, 32) if pattern == "heads_ffn" else (2, 64)  # of 4 heads and 64 neurons per layer
    assert small.config.pruned_structure == {"heads": [heads, heads], "neurons": [ffn, ffn]}
    x = _inputs(model)
    with torch.no_grad():
        expected, got, dense = masked(**x).logits, small(**x).logits, model(**x).logits
    assert torch.allclose(got, expected, atol=1e-6)
    assert (dense - expected).abs().max() > 1e-4  # the masking did change the function
    # every weight that goes with a removed unit is masked, so sparsity counts what export removes
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    removed = count(model) - count(small)
    assert removed == sum(int((~m).sum()) for m in masks.values())
    save_sliced(small, tmp_path)
    again = load_sliced(tmp_path)
    with torch.no_grad():
        assert torch.equal(again(**x).logits, got)


def test_head_and_neuron_scores_are_mean_magnitudes_hand_computed():
    model = tiny_bert().eval()
    block = encoder_blocks(model)[0]
    with torch.no_grad():
        for p in ("q", "k", "v"):
            block.linear(model, p).weight[8:16] *= 100  # head 1 (head size 8)
        ffn = block.linear(model, "ffn_in").weight
        ffn.copy_(torch.arange(64.0).view(64, 1) * torch.tensor([1.0, -1.0]).repeat(16))  # neuron i: mean |w| = i
    masks = omp(model, MaskSpec(pattern="heads_ffn", sparsity=0.75, scope="layerwise"))
    q = masks["bert.encoder.layer.0.attention.self.query.weight"]
    assert q.all(dim=1).view(4, 8).all(dim=1).tolist() == [False, True, False, False]
    assert (q.all(dim=1) == q.any(dim=1)).all() and masks["bert.encoder.layer.0.attention.self.value.bias"][8:16].all()
    o = masks["bert.encoder.layer.0.attention.output.dense.weight"]
    assert o.all(dim=0).tolist() == [False] * 8 + [True] * 8 + [False] * 16  # its output-projection columns
    neurons = masks["bert.encoder.layer.0.intermediate.dense.weight"].all(dim=1)
    assert neurons.nonzero().flatten().tolist() == list(range(48, 64))  # keep the top 16 of 64
    assert masks["bert.encoder.layer.0.output.dense.weight"].all(dim=0).equal(neurons)


@pytest.mark.parametrize("scheme", ["aimp", "lmp"])
def test_aimp_and_lmp_draw_heads_ffn_tickets_that_export(scheme):
    model = tiny_bert().eval()
    cfg = DrawTicketConfig(pattern="heads_ffn", sparsity=0.5, rounds=2, score_init="kaiming")

    def fit(m, mask=None, *, round=None, adversarial=False, head_lr=None):  # a few plain steps of training
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=0.5)
        for _ in range(3):
            m(**TEXT, labels=torch.tensor([0, 1, 2])).loss.backward()
            opt.step()
            opt.zero_grad()
            if mask is not None:
                apply_masks(m, mask)
        return {}

    mask = get_strategy(scheme).prune(model, None, cfg, fit)
    structure = export_smaller(model.eval(), mask).config.pruned_structure
    assert sum(structure["heads"]) == 4 and sum(structure["neurons"]) == 64  # half of 2 x 4 heads, 2 x 64 neurons
    assert mask.sparsity == pytest.approx(0.5, abs=0.01)


def test_unstructured_ticket_has_no_smaller_form_and_resnet_has_no_encoder(make_resnet):
    model = tiny_bert().eval()
    with pytest.raises(ValueError, match="no whole attention head"):
        export_smaller(model, omp(model, MaskSpec(sparsity=0.5)))
    with pytest.raises(ValueError, match="encoder layers"):
        omp(make_resnet(), MaskSpec(pattern="heads"))


@pytest.mark.integration
def test_draw_ticket_stage_and_export_ticket_on_a_vit(tmp_path):
    from transformers import ViTImageProcessor

    from tailor.artifacts import Artifact, load_model
    from tailor.methods.tickets.commands import export_ticket
    from tailor.pipeline import run_recipe
    from tailor.recipe import parse_recipe

    base = tmp_path / "base"
    tiny_vit().save_pretrained(base)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(base)
    stages = [
        {
            "draw_ticket": {
                "scheme": "lmp",
                "pattern": "heads",
                "sparsity": 0.5,
                "steps": 2,
                "batch_size": 16,
                "lr": 0.1,
                "score_rank": "abs",
                "scope": "layerwise",
            }
        }
    ]
    recipe = parse_recipe(
        {
            "name": "t",
            "model": str(base),
            "seeds": [0],
            "stages": stages,
            "data": {"name": "digits", "train_size": 32, "test_size": 16, "image_size": 16},
        }
    )
    result = run_recipe(recipe, tmp_path / "runs")
    ticket = result.path / "seed-0" / "01-draw_ticket" / "model"
    assert result.results["seeds"]["0"]["01-draw_ticket"]["sparsity"] == pytest.approx(0.5)
    out = export_ticket(ticket, tmp_path / "small")
    assert out["structure"]["heads"] == [2, 2] and out["max_abs_logit_diff"] < 1e-5
    small = Artifact.load(tmp_path / "small")
    assert small.format == "ticket_sliced"
    masked = load_model(Artifact.load(ticket), "classifier", 10).eval()
    with torch.no_grad():
        assert torch.allclose(load_model(small, "classifier")(**IMAGE).logits, masked(**IMAGE).logits, atol=1e-5)
