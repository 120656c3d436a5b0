import copy

import pytest
import torch

from tailor.methods.tickets.transformer_structured import (head_neuron_scores, keep_top, mask_heads_and_neurons,
                                                           remove_heads_and_neurons)

from ..kdqat.conftest import tiny_bert, tiny_roberta, tiny_vit


@pytest.mark.parametrize("build", [tiny_bert, tiny_roberta])
def test_removing_half_the_heads_and_neurons_equals_masking_them(build):
    model = build().eval()
    keep = keep_top(head_neuron_scores(model), 0.5)
    assert [(int(h.sum()), int(n.sum())) for h, n in keep] == [(2, 32), (2, 32)]  # 4 heads, 64 neurons per layer
    masked = copy.deepcopy(model)
    mask_heads_and_neurons(masked, keep)
    small = remove_heads_and_neurons(copy.deepcopy(model), keep)
    x = {"input_ids": torch.randint(3, 60, (3, 9)), "attention_mask": torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 9])}
    with torch.no_grad():
        expected, got, dense = masked(**x).logits, small(**x).logits, model(**x).logits
    assert torch.allclose(got, expected, atol=1e-6)
    assert (dense - expected).abs().max() > 1e-4  # the masking did change the function
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < count(model)


def test_scores_rank_heads_by_their_weights():
    model = tiny_bert().eval()
    attn = model.bert.encoder.layer[0].attention.self
    with torch.no_grad():
        for p in ("query", "key", "value"):
            getattr(attn, p).weight[8:16] *= 100  # head 1 (head size 8)
    heads, _ = keep_top(head_neuron_scores(model), 0.25)[0]
    assert heads.tolist() == [False, True, False, False]


def test_vit_layout_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="BERT-style encoder layers"):
        head_neuron_scores(tiny_vit())
