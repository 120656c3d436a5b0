import math

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from tailor.engine.losses import mars_norm
from tailor.methods.finetune.regularizers import (
    R3F,
    L2ToPretrained,
    MarsProjection,
    mars_project_,
    pretrained_reference,
    symmetric_kl,
)


class _CE:
    weights = {"ce": 1.0}

    def terms(self, model, batch, teacher=None):
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return {"ce": F.cross_entropy(logits, batch["labels"])}


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=2,
        )
    )


def test_mars_projection_golden():
    ref = {"w": torch.zeros(2, 2)}
    w = torch.tensor([[3.0, -3.0], [1.0, 0.0]])  # MARS norm 6
    mars_project_([("w", w)], ref, radius=2.0)
    assert torch.allclose(w, torch.tensor([[1.0, -1.0], [1 / 3, 0.0]]))
    inside = torch.tensor([[0.5, 0.5], [0.0, 0.0]])
    mars_project_([("w", inside)], ref, radius=2.0)
    assert torch.equal(inside, torch.tensor([[0.5, 0.5], [0.0, 0.0]]))


def test_mars_callback_keeps_encoder_in_ball(classifier):
    callback = MarsProjection(classifier, radius=0.1)
    with torch.no_grad():
        for p in classifier.parameters():
            p.add_(torch.randn_like(p))
    callback.on_step_end(None, None, None, model=classifier)
    for name, p in classifier.base_model.named_parameters():
        if name in callback.reference:
            assert mars_norm(p - callback.reference[name]).item() <= 0.1 + 1e-5


def test_symmetric_kl_golden():
    p, q = torch.log(torch.tensor([[0.5, 0.5]])), torch.log(torch.tensor([[0.9, 0.1]]))
    expected = (
        0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1) + 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    )
    assert symmetric_kl(p, q).item() == pytest.approx(expected, rel=1e-5)


def test_l2_to_pretrained_grows_as_weights_move(classifier, text_batch):
    objective = L2ToPretrained(_CE(), pretrained_reference(classifier), coef=0.5)
    assert objective.weights == {"ce": 1.0, "l2_to_pretrained": 0.5}
    assert objective.terms(classifier, text_batch)["l2_to_pretrained"].item() == 0.0
    with torch.no_grad():
        classifier.bert.embeddings.word_embeddings.weight[0, 0] += 2.0
    assert objective.terms(classifier, text_batch)["l2_to_pretrained"].item() == pytest.approx(4.0)


def test_r3f_adds_symmetric_kl_of_noisy_embeddings(classifier, text_batch):
    classifier.eval()
    terms = R3F(_CE(), eps=0.0).terms(classifier, text_batch)
    assert terms["r3f"].item() == pytest.approx(0.0, abs=1e-10)
    terms = R3F(_CE(), eps=1.0, noise="normal", coef=2.0).terms(classifier, text_batch)
    assert terms["r3f"].item() > 0 and set(terms) == {"ce", "r3f"}
    with pytest.raises(ValueError, match="'uniform', 'normal'"):
        R3F(_CE(), noise="gaussian")
