import pytest
import torch

from tailor.config import ConfigError
from tailor.methods.selfdistill.mim import MaskedPatchModel
from tailor.methods.selfdistill.objectives import (
    MaskedAutoEncodingObjective,
    MaskedLM,
    MaskedPatches,
    NativeMAE,
    SelfDistillObjective,
    represent,
    unmasked_hidden,
)

from .conftest import SPECIALS, VOCAB


def _mlm():
    return MaskedLM(mask_token_id=SPECIALS["mask"], special_ids=list(SPECIALS.values()), vocab_size=VOCAB)


def _teacher_from(model):
    teacher = type(model)(model.config)
    teacher.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return teacher.eval().requires_grad_(False)


def _backends(name, tiny_bert_mlm, tiny_vitmae, tiny_dinov2):
    if name == "text":
        return tiny_bert_mlm, _mlm()
    if name == "mae":
        return tiny_vitmae, NativeMAE()
    return MaskedPatchModel(tiny_dinov2, mask_ratio=0.5), MaskedPatches()


def _head_params(name, model):
    prefix = {"text": "cls.predictions.transform", "mae": "decoder.", "mim": "decoder."}[name]
    return {n: p for n, p in model.named_parameters() if n.startswith(prefix)}


@pytest.mark.parametrize("name", ["text", "mae", "mim"])
def test_distill_term_leaves_decoder_gradients_untouched(
    name, tiny_bert_mlm, tiny_vitmae, tiny_dinov2, text_batch, image_batch
):
    model, mae = _backends(name, tiny_bert_mlm, tiny_vitmae, tiny_dinov2)
    batch = text_batch if name == "text" else image_batch
    teacher = _teacher_from(model) if name != "mim" else MaskedPatchModel(_teacher_from(tiny_dinov2)).eval()
    terms = SelfDistillObjective(mae).terms(model, batch, teacher)
    assert set(terms) == {"mae", "distill"} and terms["distill"].item() > 0
    terms["distill"].backward()
    head = _head_params(name, model)
    assert head and all(p.grad is None for p in head.values())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.base_model.parameters())
    model.zero_grad()
    terms = SelfDistillObjective(mae).terms(model, batch, teacher)
    terms["mae"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.values())


@pytest.mark.parametrize("name", ["text", "mae"])
def test_teacher_gets_no_gradient_and_does_not_change(
    name, tiny_bert_mlm, tiny_vitmae, tiny_dinov2, text_batch, image_batch
):
    model, mae = _backends(name, tiny_bert_mlm, tiny_vitmae, tiny_dinov2)
    batch = text_batch if name == "text" else image_batch
    teacher = _teacher_from(model)
    teacher.requires_grad_(True)  # even a teacher left trainable must receive no gradient
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    objective = SelfDistillObjective(mae)
    optimiser = torch.optim.SGD(list(model.parameters()) + list(teacher.parameters()), lr=0.5)
    loss = sum(objective.weights[k] * v for k, v in objective.terms(model, batch, teacher).items())
    loss.backward()
    optimiser.step()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_distill_is_zero_when_student_equals_teacher(tiny_bert_mlm, text_batch):
    tiny_bert_mlm.eval()  # no dropout, so identical weights give identical representations
    teacher = type(tiny_bert_mlm)(tiny_bert_mlm.config)
    teacher.load_state_dict(tiny_bert_mlm.state_dict())
    teacher.eval()
    for rep in ("cls", "mean", "tokens"):
        terms = SelfDistillObjective(_mlm(), representation=rep).terms(tiny_bert_mlm, text_batch, teacher)
        assert terms["distill"].item() == pytest.approx(0.0, abs=1e-10)


def test_representations_ignore_padding(tiny_bert_mlm, text_batch):
    tiny_bert_mlm.eval()
    hidden, valid = unmasked_hidden(tiny_bert_mlm.base_model, text_batch)
    tokens = represent(hidden, valid, "tokens")
    assert tokens[0, 8:].abs().sum() == 0
    mean = represent(hidden, valid, "mean")
    assert torch.allclose(mean[0], hidden[0, :8].mean(dim=0), atol=1e-6)
    assert torch.equal(represent(hidden, valid, "cls"), hidden[:, 0])
    with pytest.raises(ValueError, match="valid: cls, mean, tokens"):
        represent(hidden, valid, "pooler")


def test_vitmae_unmasked_path_sees_all_patches_in_order(tiny_vitmae, image_batch):
    tiny_vitmae.eval()
    encoder = tiny_vitmae.vit
    hidden, _ = unmasked_hidden(encoder, image_batch)
    assert hidden.shape[1] == 1 + 16 and encoder.config.mask_ratio == 0.75
    again, _ = unmasked_hidden(encoder, image_batch)
    assert torch.equal(hidden, again)  # no random masking or shuffling left in the path
    # an MAE model sees unmasked images position-wise: permuting the batch permutes the outputs
    flipped, _ = unmasked_hidden(encoder, {"pixel_values": image_batch["pixel_values"].flip(0)})
    assert torch.allclose(flipped.flip(0), hidden, atol=1e-5)


@pytest.mark.parametrize("match", ["prediction", "weight_l2", "weight_mars"])
def test_ablation_terms(match, tiny_bert_mlm, text_batch):
    teacher = _teacher_from(tiny_bert_mlm)
    terms = SelfDistillObjective(_mlm(), match=match).terms(tiny_bert_mlm, text_batch, teacher)
    assert terms["distill"].item() > 0 and terms["distill"].requires_grad


def test_without_mae_skips_the_masked_pass(tiny_bert_mlm, text_batch):
    objective = SelfDistillObjective(_mlm(), mae_weight=0.0)
    assert objective.weights == {"distill": 1.0}
    assert set(objective.terms(tiny_bert_mlm, text_batch, _teacher_from(tiny_bert_mlm))) == {"distill"}


def test_mae_objective_text_masks_only_real_tokens(tiny_bert_mlm, text_batch):
    mlm = _mlm()
    masked, labels = mlm.sample(tiny_bert_mlm, text_batch)
    assert (labels[0, 7:] == -100).all() and (labels[:, 0] == -100).all()  # [SEP], padding, [CLS]
    loss = MaskedAutoEncodingObjective(mlm).terms(tiny_bert_mlm, text_batch)["mae"]
    assert loss.item() == pytest.approx(torch.log(torch.tensor(float(VOCAB))).item(), rel=0.3)


def test_a_batch_with_no_maskable_token_is_a_clear_error_not_a_nan(tiny_bert_mlm, text_batch):
    """All [CLS]/[SEP]/padding (as when a mismatched tokenizer maps every word to [UNK]): L_MAE would be a
    mean over no position, a NaN the non-finite guard would blame on the learning rate."""
    ids = text_batch["input_ids"].clone()
    ids[:, 1:-1] = SPECIALS["pad"]
    with pytest.raises(ConfigError, match="no token of a batch can be masked"):
        _mlm().sample(tiny_bert_mlm, {**text_batch, "input_ids": ids})


def test_bad_options_name_valid_choices():
    with pytest.raises(ValueError, match="representation, prediction"):
        SelfDistillObjective(_mlm(), match="kl")
    with pytest.raises(ValueError, match="needs a teacher"):
        SelfDistillObjective(_mlm()).terms(None, {}, None)


def test_mlm_loss_on_masked_positions_matches_full_logits(tiny_bert_mlm, text_batch):
    tiny_bert_mlm.eval()
    mlm = _mlm()
    corruption = mlm.sample(tiny_bert_mlm, text_batch)
    full, _ = mlm.predict(tiny_bert_mlm, text_batch, corruption)
    assert mlm.loss(tiny_bert_mlm, text_batch, corruption).item() == pytest.approx(full.item(), rel=1e-5)
