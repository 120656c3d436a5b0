"""The stage contract: a stage runner is ``runner(config, ctx: StageContext) -> StageResult``.

Methods import this module, never the pipeline that drives them; stages are declared with
`tailor.plugins.declare_method` and looked up with `tailor.plugins.get_stage`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .artifacts import Artifact, load_model

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
