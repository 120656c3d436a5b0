"""The self-distillation comparison is fair: FT, FPT and SD differ only in the method under test.

Before the fix, ``further_pretrain``/``self_distill`` saved a ``BertForMaskedLM`` with no pooler, so
fine-tuning after them began from a random pooler while plain fine-tuning kept the pretrained one."""

import pytest
import torch

from tailor.methods.finetune import stages as finetune_stages
from tailor.methods.finetune.stages import reinit_pooler
from tailor.methods.selfdistill import repro
from tests.methods.fairness import (
    assert_same_tensors,
    non_encoder,
    record_initial_states,
    text_csv,
    tiny_bert_with_pooler,
)


def _task(tmp_path, finetune_extra=None):
    model = tiny_bert_with_pooler(tmp_path / "tiny-bert-pooler")
    data = {"name": str(text_csv(tmp_path / "texts.csv")), "train_size": 24, "test_size": 12, "max_length": 12}
    ft = {"steps": 1, "batch_size": 8, "log_every": 1, "eval_batch_size": 32, **(finetune_extra or {})}
    pt = {"steps": 1, "batch_size": 8, "head_warmup_steps": 1, "log_every": 1}
    return repro.Task("texts", str(model), data, "macro_f1", ft, pt)


def test_resolved_recipes_differ_only_in_the_method(tmp_path):
    task = _task(tmp_path)
    resolved = {m: repro._recipe(m, task, [0]).resolved() for m in repro.CORE + repro.FULL_EXTRA}
    for method, cfg in resolved.items():
        assert cfg["data"] == resolved["finetune"]["data"] and cfg["model"] == resolved["finetune"]["model"], method
        finetune = dict(cfg["stages"][-1]["finetune"])
        plain = dict(resolved["finetune"]["stages"][-1]["finetune"])
        if method in ("recadam", "mars", "r3f"):  # the baselines differ in their regularizer only
            finetune.pop("regularizer"), plain.pop("regularizer")
        assert finetune == plain, method
        if "self_distill" in [next(iter(s)) for s in cfg["stages"]]:
            assert cfg["stages"][0] == resolved["further_pretrain"]["stages"][0], method  # the same teacher


@pytest.mark.slow
def test_every_arm_starts_fine_tuning_from_the_same_pooler_and_head(tmp_path, monkeypatch):
    task = _task(tmp_path)
    monkeypatch.setattr(repro, "profiles", lambda: {"quick": repro.Profile(tasks=(task,), methods=repro.CORE)})
    states = record_initial_states(monkeypatch, finetune_stages)
    repro.run("quick", tmp_path / "out", seeds=[0])
    starts = {name: state for (name, seed, stage), state in states.items() if stage.endswith("finetune")}
    assert len(starts) == 3
    (plain,) = [s for n, s in starts.items() if n.endswith("-finetune")]
    for name, state in starts.items():
        assert_same_tensors(non_encoder(state), non_encoder(plain), name)
    from safetensors.torch import load_file

    pretrained = load_file(str(tmp_path / "tiny-bert-pooler" / "model.safetensors"))
    assert torch.equal(plain["bert.pooler.dense.weight"], pretrained["pooler.dense.weight"])  # carried, not drawn


@pytest.mark.slow
def test_pooler_reinit_draws_the_same_fresh_pooler_in_every_arm(tmp_path, monkeypatch):
    task = _task(tmp_path, {"pooler": "reinit"})
    monkeypatch.setattr(repro, "profiles", lambda: {"quick": repro.Profile(tasks=(task,), methods=repro.CORE)})
    states = record_initial_states(monkeypatch, finetune_stages)
    repro.run("quick", tmp_path / "out", seeds=[0])
    starts = [non_encoder(s) for (_, _, stage), s in states.items() if stage.endswith("finetune")]
    for state in starts[1:]:
        assert_same_tensors(state, starts[0], "pooler: reinit")
    from safetensors.torch import load_file

    pretrained = load_file(str(tmp_path / "tiny-bert-pooler" / "model.safetensors"))
    assert not torch.equal(starts[0]["bert.pooler.dense.weight"], pretrained["pooler.dense.weight"])


def test_reinit_pooler_draws_bert_init():
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(
        BertConfig(
            hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, initializer_range=0.5
        )
    )
    torch.nn.init.constant_(model.bert.pooler.dense.bias, 3.0)
    reinit_pooler(model)
    assert torch.equal(model.bert.pooler.dense.bias, torch.zeros(64))
    assert abs(float(model.bert.pooler.dense.weight.std()) - 0.5) < 0.05
