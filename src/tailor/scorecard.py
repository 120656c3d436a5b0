"""What every classification stage's record carries besides its own scores: the two baselines on
the same data split (`tailor.baselines`), computed once per split in the pipeline, not in each stage."""
from __future__ import annotations

from pathlib import Path

from .baselines import baselines_for


def scores_task_test(metrics: dict, task) -> bool:
    """True when the stage reports classification metrics on the recipe's own test split."""
    test = metrics.get("test")
    return isinstance(test, dict) and "accuracy" in test and test.get("n") == len(task.test)


def attach(metrics: dict, task, stage_dir: Path) -> dict:
    """The stage's metrics plus `baselines` (majority, linear) when it scores the recipe's test split."""
    if not scores_task_test(metrics, task):
        return metrics
    return {**metrics, "baselines": baselines_for(task)}
