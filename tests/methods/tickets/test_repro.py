"""The repro's plan is a valid branching recipe, and its tables aggregate as hand-computed."""

import pytest

from tailor.methods.tickets.repro import PROFILES, overview, plan, table
from tailor.recipe import parse_recipe


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_plan_is_a_valid_recipe_whose_transfers_branch_from_tickets(tmp_path, profile):
    p = PROFILES[profile]
    attack = {"eps": "4/255", "steps": 3}
    stages, labels = plan(p, attack, {**attack, "steps": 10})
    recipe = parse_recipe({"name": "plan", "model": str(tmp_path), "data": {"name": "digits"}, "stages": stages})
    calls = recipe.calls
    n_tasks, n_protocols, n_sparsities = len(p.tasks), len(p.protocols), len(p.sparsities)
    n_patterns = sum(len(levels) for levels in p.patterns.values())  # OMP tickets beside unstructured
    assert len(labels) == n_tasks * n_protocols * (1 + len(p.schemes) * n_sparsities + n_patterns)
    ids = [f"{i + 1:02d}-{c.name}" for i, c in enumerate(calls)]
    for i, label in labels.items():
        call = calls[i]
        assert call.name == "transfer" and call.config.protocol == label["protocol"]
        source = calls[ids.index(call.config.source)]
        if label["scheme"] == "dense":
            assert source.name == "robust_pretrain"
        else:
            scheme, _, pattern = label["scheme"].partition("/")
            assert source.config.scheme == scheme and source.config.sparsity == label["sparsity"]
            assert source.config.pattern == {"": "unstructured", "2:4": "nm"}.get(pattern, pattern)
    aimp = [c for c in calls if c.name == "draw_ticket" and c.config.scheme == "aimp"]
    assert [c.config.source for c in aimp[1:]] == [ids[calls.index(c)] for c in aimp[:-1]]  # IMP continues


def test_tables_average_as_hand_computed():
    rows = []
    for seed, (nat, rob) in enumerate([(0.5, 0.7), (0.7, 0.7)]):
        for task, shift in (("a", 0.0), ("b", 0.1)):
            for pretrain, acc in (("natural", nat), ("robust", rob)):
                rows.append(
                    {
                        "pretrain": pretrain,
                        "seed": seed,
                        "scheme": "omp",
                        "protocol": "finetune",
                        "task": task,
                        "sparsity": 0.9,
                        "accuracy": acc + shift,
                        "source_accuracy": 0.8,
                        "source_robust_accuracy": None if pretrain == "natural" else 0.4,
                    }
                )
    line = [ln for ln in overview(rows, ["natural", "robust"]) if ln.startswith("| omp")][0]
    # natural: seed means 0.55, 0.75 -> 65.00 ± 10.00; robust: 0.75, 0.75 -> 75.00 ± 0.00; gap +10.00
    assert line == "| omp | finetune | 0.9 | 65.00 ± 10.00 | 75.00 ± 0.00 | +10.00 |"
    text = table(rows, ["natural", "robust"])
    assert "| omp | finetune | b | 0.9 | 70.00 ± 10.00 | 80.00 ± 0.00 | +10.00 |" in text
    assert "in 2 of 2" in text
    # per seed, averaged over tasks: natural 0.55, 0.75; robust 0.75, 0.75 -> d = +20, 0: mean +10,
    # sd 14.142, t_{0.975,1} 12.706205 · 14.142/√2 = 127.06 -> [-117.06, +137.06]
    assert "| omp | finetune | 0.9 | robust | +10.00 | [-117.06, +137.06] | inconclusive (n=2) |" in text


def test_paper_recipe_profile_switches_the_three_recipes(tmp_path):
    stages, labels = plan(PROFILES["quick-paper-recipe"], {"eps": "4/255"}, {"eps": "4/255"})
    calls = parse_recipe({"name": "plan", "model": str(tmp_path), "data": {"name": "digits"}, "stages": stages}).calls
    transfer = calls[min(labels)].config  # quick transfers 3 epochs: lr x0.1 after epochs 1 and 2 (50, 100 of 150)
    assert (transfer.optimizer, transfer.momentum, transfer.weight_decay, transfer.scheduler, transfer.gamma) == (
        "sgd",
        0.9,
        1e-4,
        "multistep",
        0.1,
    )
    assert transfer.milestones == [1.0, 2.0] and transfer.milestones_in == "epochs"
    draws = [c.config for c in calls if c.name == "draw_ticket"]
    assert all(c.rate == 0.2 for c in draws if c.scheme == "aimp")
    assert all((c.score_rank, c.scope) == ("abs", "layerwise") for c in draws if c.scheme == "lmp")
    quick, _ = plan(PROFILES["quick"], {"eps": "4/255"}, {"eps": "4/255"})  # quick keeps its recipes
    assert all(s["transfer"].get("optimizer") is None for s in quick if "transfer" in s)
    assert all(s["draw_ticket"].get("rounds") == 1 for s in quick if s.get("draw_ticket", {}).get("scheme") == "aimp")


def test_a_profile_with_a_model_draws_from_it_and_builds_no_resnet(tmp_path, monkeypatch):
    from tailor.methods.tickets import repro

    started = []

    def first_recipe(recipe, runs, seeds):
        started.append(recipe)
        raise KeyboardInterrupt  # stop before training anything

    monkeypatch.setattr(repro, "run_recipe", first_recipe)
    with pytest.raises(KeyboardInterrupt):
        repro.run("standard-effnet", tmp_path)
    assert started[0].model == "effnet-lite0" and not (tmp_path / "base-model").exists()
    (planned,) = {r.recipe["model"] for r in repro.planned_runs("standard-effnet")}
    assert planned == "effnet-lite0"
    assert repro.forward_flops(PROFILES["standard-effnet"]) == pytest.approx(2 * 407e6 * (32 / 224) ** 2)
