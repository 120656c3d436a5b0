import copy

import pytest
import torch
import torch.nn.functional as F

from tailor.methods.kdqat.config import DistillConfig
from tailor.methods.kdqat.objective import KDQATObjective
from tailor.methods.kdqat.student import quantize_model

ALL_TERMS = {"pred": 1.0, "rep": 1.0, "score": 1.0, "map": 1.0, "output": 1.0, "gt": 1.0}


def _batch(batch):
    return {**batch, "labels": torch.tensor([0, 1, 2])}


def test_identical_student_has_zero_distillation_terms(tiny, batch):
    teacher = tiny.bert()
    student = copy.deepcopy(teacher)
    objective = KDQATObjective(DistillConfig(weights=ALL_TERMS), student, teacher)
    terms = objective.terms(student, _batch(batch), teacher)
    assert set(terms) == set(ALL_TERMS)
    for name in ("rep", "score", "map", "output"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-6), name
    probs = F.softmax(teacher(**batch).logits, -1)
    assert terms["pred"].item() == pytest.approx(-(probs * probs.log()).sum(-1).mean().item(), abs=1e-5)


def test_quantized_student_terms_are_positive_and_train(tiny, batch):
    teacher = tiny.bert()
    student = quantize_model(copy.deepcopy(teacher)).train()
    objective = KDQATObjective(DistillConfig(preset="sm1", beta=0.3), student, teacher)
    assert objective.weights == {"pred": 1.0, "rep": 1.0, "map": 1.0, "output": 0.3}
    terms = objective.terms(student, _batch(batch), teacher)
    assert set(terms) == {"pred", "rep", "map", "output"} and all(v.item() > 0 for v in terms.values())
    sum(terms.values()).backward()
    assert student.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_layer_selection_uses_only_chosen_hidden_states(tiny, batch):
    teacher = tiny.bert()
    student = quantize_model(copy.deepcopy(teacher)).eval()
    objective = KDQATObjective(DistillConfig(preset="output", layers=[1]), student, teacher)
    terms = objective.terms(student, _batch(batch), teacher)
    s = student(**batch, output_hidden_states=True).hidden_states
    t = teacher(**batch, output_hidden_states=True).hidden_states
    assert terms["rep"].item() == pytest.approx(F.mse_loss(s[2], t[2]).item(), rel=1e-5)


def test_map_temperature_uses_scores(tiny, batch):
    teacher = tiny.bert()
    student = quantize_model(copy.deepcopy(teacher)).eval()
    cold = KDQATObjective(DistillConfig(preset="map"), student, teacher).terms(student, _batch(batch), teacher)
    hot = KDQATObjective(DistillConfig(preset="map", map_tau=10.0), student, teacher).terms(
        student, _batch(batch), teacher
    )
    assert 0 < hot["map"].item() < cold["map"].item()


def test_objective_errors_are_actionable(tiny):
    teacher = tiny.bert()
    with pytest.raises(ValueError, match="out of range"):
        KDQATObjective(DistillConfig(layers=[5]), tiny.bert(), teacher)
    with pytest.raises(ValueError, match="needs the full-precision teacher"):
        KDQATObjective(DistillConfig(), tiny.bert(), teacher).terms(tiny.bert(), {}, None)
