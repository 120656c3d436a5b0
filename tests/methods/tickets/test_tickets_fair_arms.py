"""The tickets comparison is fair: natural and robust pretraining branch into identical ticket and
transfer recipes, and every transfer starts from the same new head; only the pretraining (and
A-IMP's adversarial rounds, part of the method) differ."""

import dataclasses
import re

import pytest

from tailor.methods.tickets import repro
from tailor.methods.tickets import stages as tickets_stages
from tailor.zoo.data import list_datasets
from tailor.zoo.models import HEAD_PARAM_PATTERN
from tests.methods.fairness import assert_same_tensors, record_initial_states

ATTACK = {"kind": "pgd", "norm": "linf", "eps": "4/255", "steps": 3}
EVAL_ATTACK = {**ATTACK, "steps": 10}


@pytest.mark.parametrize("profile", sorted(repro.PROFILES))
def test_natural_and_robust_plans_differ_only_in_the_attack(profile):
    p = repro.PROFILES[profile]
    natural, _ = repro.plan(p, None, EVAL_ATTACK)
    robust, labels = repro.plan(p, ATTACK, EVAL_ATTACK)
    assert len(natural) == len(robust)
    for i, (a, b) in enumerate(zip(natural, robust)):
        (name, cfg_a), (_, cfg_b) = *a.items(), *b.items()
        differ = {k for k in cfg_a.keys() | cfg_b.keys() if cfg_a.get(k) != cfg_b.get(k)}
        assert differ <= {"attack"}, (i, name, differ)
        assert not differ or name == "robust_pretrain" or cfg_a.get("scheme") == "aimp", (i, name)


@pytest.mark.integration
@pytest.mark.slow
def test_every_transfer_starts_from_the_same_head_in_both_arms(tmp_path, monkeypatch):
    if not all(any(d.name == n and d.available() for d in list_datasets()) for n in ("fashion-mnist", "digits")):
        pytest.skip("fashion-mnist or digits is not installed")
    tiny = dataclasses.replace(
        repro.PROFILES["quick"],
        seeds=(0,),
        widths=(4, 8, 8),
        source_train=64,
        task_train=32,
        test_size=32,
        pretrain_epochs=1,
        round_epochs=1,
        lmp_epochs=1,
        transfer_epochs=1,
        pgd_steps=1,
        sparsities=(0.5,),
        schemes=("omp", "lmp"),
        protocols=("finetune",),
        tasks={"digits": {"name": "digits"}},
    )
    monkeypatch.setitem(repro.PROFILES, "quick", tiny)
    states = record_initial_states(monkeypatch, tickets_stages)
    repro.run("quick", tmp_path)
    transfers = {}
    for (name, _, stage), state in states.items():
        if stage.endswith("transfer"):
            head = {k: v for k, v in state.items() if re.search(HEAD_PARAM_PATTERN, k)}
            transfers.setdefault(stage, {})[name.rsplit("-", 1)[-1]] = head
    assert transfers and all(len(arms) == 2 for arms in transfers.values())
    for stage, arms in transfers.items():
        assert_same_tensors(arms["natural"], next(v for k, v in arms.items() if k != "natural"), stage)
