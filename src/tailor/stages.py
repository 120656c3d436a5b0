"""The stage contract and registry: what a stage receives and returns, and where its runner lives.

A stage name maps to its config class and a lazily imported runner `runner(config, ctx) -> StageResult`.
Methods import this module, never the pipeline that drives them. Registration imports no torch, so
the CLI can validate a whole recipe in well under a second.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .artifacts import Artifact, load_model
from .config import ConfigError, StrictModel

if TYPE_CHECKING:
    from .recipe import Recipe


@dataclass
class StageResult:
    """What a stage hands back: its artifact (None for stages that only measure) and its metrics."""

    artifact: Artifact | None
    metrics: dict = field(default_factory=dict)


@dataclass
class StageContext:
    """What a stage receives beside its config: the recipe, its seed and folder, and earlier artifacts."""

    recipe: Recipe
    seed: int
    stage_dir: Path
    previous: Artifact | None
    history: dict[str, Artifact]
    _shared: dict = field(default_factory=dict)  # task data and inputs, shared by a seed's stages

    def base(self) -> Artifact:
        """The recipe's original pretrained model (self-distillation restarts students from it)."""
        from .zoo.models import resolve

        return Artifact(resolve(self.recipe.model), self.recipe.model, "hf")

    def source(self) -> Artifact:
        return self.previous or self.base()

    def task(self):
        if "task" not in self._shared:
            from .zoo.data import load_task

            self._shared["task"] = load_task(self.recipe.data, self.seed)
        return self._shared["task"]

    def inputs(self):
        if "inputs" not in self._shared:
            from .engine.inputs import prepare

            self._shared["inputs"] = prepare(self.task(), self.recipe.model, self.recipe.data)
        return self._shared["inputs"]

    def load(self, artifact: Artifact, head: str = "base", num_labels: int | None = None):
        return load_model(artifact, head, num_labels)


@dataclass(frozen=True)
class StageSpec:
    name: str
    config: type[StrictModel]
    runner: str  # "package.module:function"
    description: str

    def load_runner(self) -> Callable[..., Any]:
        module, func = self.runner.split(":")
        return getattr(importlib.import_module(module), func)


_STAGES: dict[str, StageSpec] = {}


def register_stage(name: str, config: type[StrictModel], runner: str, description: str) -> None:
    if name in _STAGES and _STAGES[name].runner != runner:
        raise ValueError(f"stage '{name}' is already registered by {_STAGES[name].runner}")
    _STAGES[name] = StageSpec(name, config, runner, description)


def all_stages() -> dict[str, StageSpec]:
    import tailor.methods  # noqa: F401  (registers every method's stages)

    return dict(sorted(_STAGES.items()))


def get_stage(name: str) -> StageSpec:
    stages = all_stages()
    if name not in stages:
        raise ConfigError(f"unknown stage '{name}' (valid stages: {', '.join(stages)})")
    return stages[name]
