"""A served batch mixing VeRA, LoRA and bare-base rows answers each row as its adapter alone does;
adapters for another base or head are refused with the reason."""

import pytest

from tailor.config import ConfigError
from tailor.serve.commands import expand_adapters, open_registry
from tailor.serve.registry import AdapterRefused, Registry, TextTooLong, UnknownAdapter, adapter_names

from .conftest import LABELS, alone, save_random_adapter

TEXTS = ["vote early", "make it great again", "a", "stronger together, always and forever", "zz top", "hi there"]


@pytest.fixture()
def registry(zoo_adapters):
    dirs = [f"{n}={d}" for n, d in zoo_adapters["dirs"].items()]
    return open_registry(str(zoo_adapters["base"].path), dirs, precision="fp32")  # compared in fp32, to 1e-5


def test_mixed_batch_of_vera_lora_and_base_rows_equals_each_adapter_alone(registry, zoo_adapters):
    names = ["vera1", "lora0", None, "vera0", "lora0", "vera1"]
    out = registry.run(list(zip(names, TEXTS)))
    for name, text, answer in zip(names, TEXTS, out):
        model = registry.model if name is None else zoo_adapters["models"][name]
        expected = alone(model, text)
        assert list(answer["probs"].values()) == pytest.approx(expected, abs=1e-5)
        labels = LABELS.get(name) or ["LABEL_0", "LABEL_1", "LABEL_2"]
        assert list(answer["probs"]) == labels and answer["label"] == labels[answer["label_id"]]
    # the adapters differ, so a row given the wrong adapter would fail the comparison above
    assert list(out[5]["probs"].values()) != pytest.approx(alone(zoo_adapters["models"]["vera0"], TEXTS[5]), abs=1e-3)


@pytest.mark.parametrize("call_tokens,multiple", [(0, 1), (8, 8), (1e9, 1)])
def test_length_buckets_change_no_answer(zoo_adapters, call_tokens, multiple):
    registry = open_registry(
        str(zoo_adapters["base"].path),
        [f"{n}={d}" for n, d in zoo_adapters["dirs"].items()],
        precision="fp32",
        bucket_call_tokens=call_tokens,
        pad_multiple=multiple,
    )
    names = ["vera1", "vera0", "lora0", "vera0", "lora0", "vera1"]
    out = registry.run(list(zip(names, TEXTS)))
    for name, text, answer in zip(names, TEXTS, out):
        assert list(answer["probs"].values()) == pytest.approx(alone(zoo_adapters["models"][name], text), abs=1e-5)
    # tokens: vera rows 11, 18, 35, 9 and lora rows 3, 7; at cost 8 and multiple 8 the vera rows pad to
    # 16, 24, 40, 16 and cut into [9, 11], [18], [35] (24 + 8 < 3 * 24 - 2 * 16), the lora rows stay one
    forwards = {0: 6, 8: 4, 1e9: 2}[call_tokens]
    assert registry.stats["forwards"] == forwards, registry.stats
    assert registry.stats["real_tokens"] <= registry.stats["padded_tokens"]


def test_unload_and_reload_at_run_time(registry, zoo_adapters):
    registry.unload("vera0")  # the first VeRA adapter: the mixed batch must not depend on it
    assert list(registry.adapters) == ["vera1", "lora0"]
    (answer,) = registry.run([("vera1", "hi there")])
    assert list(answer["probs"].values()) == pytest.approx(alone(zoo_adapters["models"]["vera1"], "hi there"), abs=1e-5)
    assert isinstance(registry.run([("vera0", "x")])[0], UnknownAdapter)
    registry.unload("lora0")
    assert "lora" not in registry._peft  # the last adapter of a kind releases its peft copy
    registry.load(zoo_adapters["dirs"]["lora0"], "again")
    (answer,) = registry.run([("again", "zz top")])
    assert list(answer["probs"].values()) == pytest.approx(alone(zoo_adapters["models"]["lora0"], "zz top"), abs=1e-5)
    with pytest.raises(UnknownAdapter, match="loaded: \\['vera1', 'again'\\]"):
        registry.unload("nobody")


def test_base_rows_share_the_base_weights(registry):
    vera = registry._peft["vera"]
    base_weight = registry.model.bert.encoder.layer[0].attention.self.query.weight
    wrapped = vera.base_model.model.bert.encoder.layer[0].attention.self.query.base_layer.weight
    assert wrapped is base_weight


def test_refusals_name_the_reason(registry, zoo_adapters, tmp_path):
    with pytest.raises(AdapterRefused, match="trained on .*other-base.*this server's base is"):
        registry.load(zoo_adapters["foreign"], "foreign")
    with pytest.raises(AdapterRefused, match="loaded already") as err:
        registry.load(zoo_adapters["dirs"]["vera0"], "vera0")
    assert err.value.status == 409
    with pytest.raises(AdapterRefused, match="no artifact.json"):
        registry.load(tmp_path, "empty")
    _, four = save_random_adapter(zoo_adapters["base"], tmp_path / "four", "vera", 3, list("abcd"), num_labels=4)
    with pytest.raises(AdapterRefused, match="4 labels; this server classifies into 3"):
        registry.load(four, "four")
    assert list(registry.adapters) == ["vera0", "vera1", "lora0"]  # nothing half-loaded


def test_overlength_texts_are_truncated_or_rejected(zoo_adapters):
    long_text = "word " * 400
    truncating = Registry(zoo_adapters["base"], 3, max_length=16)
    assert truncating.run([(None, long_text)])[0]["label_id"] in (0, 1, 2)
    rejecting = Registry(zoo_adapters["base"], 3, max_length=16, overlength="reject")
    too_long, fine = rejecting.run([(None, long_text), (None, "short")])
    assert isinstance(too_long, TextTooLong) and "over the limit of 16" in str(too_long)
    assert fine["label_id"] in (0, 1, 2)
    assert Registry(zoo_adapters["base"], 3, max_length=10**6).max_length == truncating.model_limit


def test_adapter_names_and_folders(zoo_adapters, tmp_path):
    assert adapter_names(["runs/a/model", "runs/b/model", "x=runs/c/model"]) == [
        ("a-model", "runs/a/model"),
        ("b-model", "runs/b/model"),
        ("x", "runs/c/model"),
    ]
    with pytest.raises(ConfigError, match="given twice"):
        adapter_names(["a=p", "a=q"])
    root = zoo_adapters["root"]
    assert sorted(expand_adapters([str(root / "vera*")])) == [str(root / "vera0"), str(root / "vera1")]
    assert str(root / "lora0") in expand_adapters([str(root)])  # a folder of adapter folders
    with pytest.raises(ConfigError, match="matches no folder"):
        expand_adapters([str(tmp_path / "nothing*")])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_mixed_vera_batch_runs_in_the_registrys_precision(zoo_adapters, precision):
    """The mixed batch's own autocast sits inside the registry's: an ``auto`` there would turn an fp32
    server's VeRA rows to bf16 on a CPU with bf16 (answers then differed from `tailor predict` by 1e-4)."""
    dirs = [f"{n}={d}" for n, d in zoo_adapters["dirs"].items()]
    registry = open_registry(str(zoo_adapters["base"].path), dirs, precision=precision)
    assert registry.mixed_vera().precision.name == registry.precision.name == precision
    registry.unload("vera0")
    assert registry.mixed_vera().precision.name == precision
