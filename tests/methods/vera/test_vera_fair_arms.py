"""The VeRA comparison is fair: full fine-tuning, LoRA and VeRA start from the same head and pooler,
on the same data, with the same schedule, batch, head learning rate and selection rule."""

import dataclasses

import pytest

from tailor.methods.finetune import stages as finetune_stages
from tailor.methods.vera import repro
from tailor.methods.vera import stages as vera_stages
from tailor.recipe import parse_recipe
from tests.methods.fairness import (
    assert_same_tensors,
    non_encoder,
    plain_names,
    record_initial_states,
    text_csv,
    tiny_bert_with_pooler,
)

SHARED = (
    "epochs",
    "steps",
    "min_steps",
    "batch_size",
    "warmup_ratio",
    "scheduler",
    "weight_decay",
    "head_lr",
    "eval_every",
    "select",
    "patience",
    "max_grad_norm",
    "precision",
)


def _profile(tmp_path):
    model = tiny_bert_with_pooler(tmp_path / "tiny-bert-pooler")
    return dataclasses.replace(
        repro.PROFILES["quick"],
        text_model=str(model),
        text_tasks=("texts",),
        task_data={"texts": {"name": str(text_csv(tmp_path / "texts.csv"))}},
        text_data={"train_size": 24, "test_size": 12, "max_length": 12},
        text_train={**repro.PROFILES["quick"].text_train, "epochs": 1, "batch_size": 8},
        image_data=None,
        decoder=None,
    )


@pytest.mark.parametrize("profile", sorted(repro.PROFILES))
def test_arms_share_data_schedule_and_head_rate(profile):
    for setting in {e.setting for e in repro.experiments(repro.PROFILES[profile])}:
        arms = [e for e in repro.experiments(repro.PROFILES[profile]) if e.setting == setting]
        resolved = [parse_recipe(e.recipe()).resolved() for e in arms]
        for exp, cfg in zip(arms, resolved):
            stage = cfg["stages"][0][exp.stage]
            first = resolved[0]["stages"][0][arms[0].stage]
            assert cfg["data"] == resolved[0]["data"] and cfg["model"] == resolved[0]["model"], exp.method
            shared = [k for k in SHARED if not (k == "head_lr" and stage.get("task") == "causal_lm")]  # no head
            assert {k: stage[k] for k in shared} == {k: first[k] for k in shared}, (setting, exp.method)


@pytest.mark.slow
def test_every_arm_starts_from_the_same_head_and_pooler(tmp_path, monkeypatch):
    monkeypatch.setitem(repro.PROFILES, "quick", _profile(tmp_path))
    full, adapters = (
        record_initial_states(monkeypatch, finetune_stages),
        record_initial_states(monkeypatch, vera_stages),
    )
    repro.run("quick", tmp_path / "out", seeds=[0])
    starts = {name: non_encoder(plain_names(s)) for (name, _, _), s in {**full, **adapters}.items()}
    assert len(starts) == len(repro.METHODS)
    first = next(iter(starts.values()))
    assert {"bert.pooler.dense.weight", "classifier.weight"} <= set(first)
    for name, state in starts.items():
        assert_same_tensors(state, first, name)
