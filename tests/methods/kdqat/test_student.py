import pytest
import torch
from torch import nn

from tailor.methods.kdqat.attention import layer_paths, use_kdqat_attention
from tailor.methods.kdqat.config import QuantConfig
from tailor.methods.kdqat.quant import QuantEmbedding, QuantLinear
from tailor.methods.kdqat.student import component, quantize_model, quantized_parameters


def _record(model, paths):
    """Outputs of the named modules in the last forward (plain torch hooks)."""
    store, handles = {}, []
    for key, path in paths.items():
        handles.append(
            model.get_submodule(path).register_forward_hook(lambda _m, _i, out, key=key: store.__setitem__(key, out))
        )
    return store, handles


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_unquantized_kdqat_attention_matches_eager(arch, batch, tiny):
    model = getattr(tiny, arch)()
    reference = model(**batch).logits
    use_kdqat_attention(model)
    assert model.config._attn_implementation == "kdqat"
    assert torch.allclose(model(**batch).logits, reference, atol=1e-6)


def test_vit_attention_and_paths(tiny):
    model = tiny.vit()
    pixels = torch.randn(2, 3, 16, 16)
    reference = model(pixel_values=pixels).logits
    use_kdqat_attention(model)
    assert torch.allclose(model(pixel_values=pixels).logits, reference, atol=1e-6)
    assert layer_paths(model)[1].attention_output == "vit.layers.1.layernorm_after"


def test_probes_expose_masked_scores_and_probabilities(batch, tiny):
    model = use_kdqat_attention(tiny.bert())
    paths = layer_paths(model)
    assert paths[0].attention_output == "bert.encoder.layer.0.attention.output"
    store, handles = _record(model, {"s": paths[0].scores, "p": paths[0].probs})
    model(**batch)
    [h.remove() for h in handles]
    scores, probs = store["s"], store["p"]
    assert scores.shape == probs.shape == (3, 4, 9, 9)
    assert torch.allclose(probs, torch.softmax(scores, -1))
    assert (scores[2, :, :, 4:] < -1e30).all() and (scores[2, :, :, :4] > -100).all()
    assert torch.allclose(probs.sum(-1), torch.ones(3, 4, 9))


def test_quantize_model_swaps_layers_and_keeps_reference_fp_parts(batch, tiny):
    model = tiny.bert()
    fp_logits = model(**batch).logits
    word = model.bert.embeddings.word_embeddings.weight
    quantize_model(model, QuantConfig())
    emb = model.bert.embeddings
    assert isinstance(emb.word_embeddings, QuantEmbedding) and emb.word_embeddings.weight_spec.rowwise
    assert emb.word_embeddings.weight is word  # shared, not copied
    assert type(emb.position_embeddings) is nn.Embedding and type(emb.token_type_embeddings) is nn.Embedding
    assert type(model.classifier) is nn.Linear
    assert isinstance(model.bert.pooler.dense, QuantLinear)
    layer = model.bert.encoder.layer[0]
    for linear in (
        layer.attention.self.query,
        layer.attention.output.dense,
        layer.intermediate.dense,
        layer.output.dense,
    ):
        assert isinstance(linear, QuantLinear) and not linear.weight_spec.rowwise
    assert layer.attention.self.kdqat_act is not None
    assert not any(k.endswith("bias") or "LayerNorm" in k for k in quantized_parameters(model))
    assert not torch.allclose(model(**batch).logits, fp_logits, atol=1e-3)


def test_student_trains_latent_weights(batch, tiny):
    model = quantize_model(tiny.bert()).train()
    model(**batch).logits.sum().backward()
    assert model.bert.encoder.layer[1].attention.self.query.weight.grad.abs().sum() > 0
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_configurable_full_precision_parts(tiny):
    cfg = QuantConfig(
        word_embeddings="fp",
        position_embeddings="layerwise",
        pooler=False,
        classifier=True,
        bias_bits=8,
        layernorm_bits=8,
        quantize_attention=False,
    )
    model = quantize_model(tiny.bert(), cfg)
    names = quantized_parameters(model)
    assert "bert.embeddings.word_embeddings.weight" not in names
    assert names["bert.embeddings.position_embeddings.weight"].rowwise is False
    assert "classifier.weight" in names and "bert.pooler.dense.weight" not in names
    assert "bert.encoder.layer.0.attention.output.LayerNorm.weight" in names
    assert "bert.encoder.layer.0.intermediate.dense.bias" in names
    assert model.bert.encoder.layer[0].attention.self.kdqat_act is None


def test_component_roles(tiny):
    model = tiny.roberta()
    assert component(model, "classifier.dense") == "classifier"
    assert component(model, "roberta.embeddings.word_embeddings") == "word_embeddings"
    assert component(model, "roberta.encoder.layer.0.attention.self.query") == "body"


def test_roberta_and_vit_students_run(batch, tiny):
    out = quantize_model(tiny.roberta())(**batch).logits
    assert out.shape == (3, 2) and torch.isfinite(out).all()
    vit = quantize_model(tiny.vit())
    assert isinstance(vit.vit.layers[0].attention.q_proj, QuantLinear)
    assert torch.isfinite(vit(pixel_values=torch.randn(1, 3, 16, 16)).logits).all()


def test_not_an_encoder_is_an_actionable_error():
    with pytest.raises(ValueError, match="query/key/value"):
        use_kdqat_attention(nn.Sequential(nn.Linear(2, 2)))
