"""What every classification stage's record carries besides its own scores: the two baselines on
the same data split (`tailor.baselines`), computed once per split in the pipeline, not in each
stage, and a verdict on whether the model learned anything (`learning`), which the CLI turns into
a warning a user cannot miss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .baselines import baselines_for

MCC_FLOOR = 0.05  # at or below: the predictions tell (almost) nothing about the labels
LOSS_FALL = 0.95  # the last fifth of logged training losses must average below 95% of the first fifth


def scores_task_test(metrics: dict, task) -> bool:
    """True when the stage reports classification metrics on the recipe's own test split."""
    test = metrics.get("test")
    return isinstance(test, dict) and "accuracy" in test and test.get("n") == len(task.test)


def attach(metrics: dict, task, stage_dir: Path) -> dict:
    """The stage's metrics plus `baselines` and `learning` when it scores the recipe's test split."""
    if not scores_task_test(metrics, task):
        return metrics
    base = baselines_for(task)
    problems = learning_problems(metrics["test"], base, loss_trend(stage_dir / "metrics.jsonl"))
    counts = np.bincount(task.train["label"], minlength=task.num_labels)
    learning = {"ok": not problems, "problems": problems}
    if problems:
        learning["advice"] = advice(len(task.train), int(counts.min()), task.num_labels, base)
    return {**metrics, "baselines": base, "learning": learning}


def loss_trend(path: Path) -> tuple[float, float] | None:
    """(mean of the first fifth, mean of the last fifth) of the logged training losses, if >= 3 were logged."""
    if not path.is_file():
        return None
    losses = [float(r["loss"]) for r in map(json.loads, path.read_text().splitlines()) if "loss" in r]
    if len(losses) < 3:
        return None
    k = max(1, len(losses) // 5)
    return float(np.mean(losses[:k])), float(np.mean(losses[-k:]))


def learning_problems(test: dict, base: dict, loss: tuple[float, float] | None) -> list[str]:
    """Plain sentences, one per sign that the model learned nothing; empty when none shows."""
    problems = []
    if test["mcc"] <= MCC_FLOOR:
        problems.append(
            f"test MCC is {test['mcc']:.3f} (<= {MCC_FLOOR}): its predictions say almost nothing about the labels"
        )
    majority = base["majority"]["accuracy"]
    if test["accuracy"] <= majority:
        problems.append(
            f"test accuracy {100 * test['accuracy']:.1f}% does not beat always answering the most frequent "
            f"class ({100 * majority:.1f}%)"
        )
    if loss is not None and loss[1] >= LOSS_FALL * loss[0]:
        problems.append(
            f"the training loss did not fall ({loss[0]:.3f} over the first logged steps, {loss[1]:.3f} over the last)"
        )
    return problems


def advice(n_train: int, smallest_class: int, num_labels: int, base: dict) -> str:
    return (
        "Likely causes: a learning rate too low to move a fresh head or too high for the encoder (finetune: "
        "head_lr 2e-3 and lr 1e-4 by default; try lr 3e-5); too few optimisation steps (try more epochs, or "
        "min_steps 300); too few examples per class "
        f"({n_train} training examples over {num_labels} classes, the smallest class has {smallest_class}: add "
        "data, or keep fewer classes with data.classes). "
        f"A TF-IDF/pixel linear model scores {100 * base['linear']['accuracy']:.1f}% on the same split."
    )


def warnings(results: dict) -> list[str]:
    """One paragraph per seed and stage of a run whose `learning` verdict is not ok."""
    out = []
    for seed, stages in results["seeds"].items():
        for stage_id, metrics in stages.items():
            learning = metrics.get("learning") or {"ok": True}
            if not learning["ok"]:
                out.append(
                    f"warning: {results['recipe']} seed {seed}, stage {stage_id} learned nothing useful: "
                    + "; ".join(learning["problems"])
                    + ". "
                    + learning["advice"]
                )
    return out
