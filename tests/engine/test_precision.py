import pytest
import torch

from tailor.engine import precision


@pytest.fixture
def cpu_units(monkeypatch):
    def set_units(value):
        monkeypatch.setattr(precision, "cpu_bf16_units", lambda: value)

    return set_units


@pytest.mark.parametrize("units, expected", [("amx_bf16", "bf16"), ("avx512_bf16", "bf16"), (None, "fp32")])
def test_auto_on_cpu_follows_the_bf16_units(cpu_units, units, expected):
    cpu_units(units)
    choice = precision.resolve("auto", "cpu")
    assert choice.name == expected
    assert (units or "neither AMX nor AVX512-BF16") in choice.reason


def test_an_explicit_request_is_kept_and_says_so(cpu_units):
    cpu_units(None)
    assert precision.resolve("bf16", "cpu") == precision.PrecisionChoice("bf16", "requested")
    assert precision.resolve("fp32", "cpu").dtype is torch.float32
    assert "emulated" in precision.resolve("fp16", "cpu").reason


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match="auto, fp32, bf16, fp16"):
        precision.resolve("int4")


def test_autocast_runs_matmuls_in_the_chosen_dtype():
    a = torch.randn(4, 4)
    with precision.autocast(precision.PrecisionChoice("bf16", "requested"), "cpu"):
        assert (a @ a).dtype is torch.bfloat16
    with precision.autocast(precision.PrecisionChoice("fp32", "requested"), "cpu"):
        assert (a @ a).dtype is torch.float32


def test_cpu_flags_are_read_from_the_kernel(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("flags\t: fpu avx2 avx512f avx512_bf16\n")
    real_path = precision.Path
    monkeypatch.setattr(precision, "Path", lambda p: real_path(info) if p == "/proc/cpuinfo" else real_path(p))
    precision.cpu_flags.cache_clear()
    try:
        assert precision.cpu_bf16_units() == "avx512_bf16"
    finally:
        precision.cpu_flags.cache_clear()


def test_full_precision_islands_run_in_fp32_inside_autocast():
    @precision.full_precision
    def island(a, pair):
        return a @ a, pair[0] @ pair[1]

    a = torch.randn(4, 4)
    with precision.autocast(precision.PrecisionChoice("bf16", "requested"), "cpu"):
        single, from_list = island(a.to(torch.bfloat16), [a, a.to(torch.bfloat16)])
        assert (a @ a).dtype is torch.bfloat16  # outside the island autocast is still on
    assert single.dtype is torch.float32 and from_list.dtype is torch.float32
    assert torch.equal(island(a, (a, a))[0], a @ a)  # fp32 in, same result as without the island


def test_kd_and_mae_losses_are_fp32_islands():
    from tailor.methods.kdqat.losses import soft_cross_entropy
    from tailor.methods.selfdistill.losses import masked_lm_loss

    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 5, generator=gen).to(torch.bfloat16), torch.randn(8, 5, generator=gen).to(torch.bfloat16)
    logits, labels = (
        torch.randn(2, 6, 11, generator=gen).to(torch.bfloat16),
        torch.randint(0, 11, (2, 6), generator=gen),
    )
    with precision.autocast(precision.PrecisionChoice("bf16", "requested"), "cpu"):
        kd, mlm = soft_cross_entropy(s, t), masked_lm_loss(logits, labels)
    assert kd.dtype is mlm.dtype is torch.float32
    assert torch.equal(kd, soft_cross_entropy(s.float(), t.float()))
    assert torch.equal(mlm, masked_lm_loss(logits.float(), labels))
