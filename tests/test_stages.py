"""The stage contract: what a StageContext hands a stage (base, source, the task and inputs, cached per seed)."""

from tailor.artifacts import Artifact
from tailor.recipe import parse_recipe
from tailor.stages import StageContext, StageResult
from tailor.zoo.models import resolve


def test_the_context_hands_the_base_the_source_and_the_task_once(tiny_recipe, tmp_path):
    recipe = parse_recipe(tiny_recipe)
    ctx = StageContext(recipe, 0, tmp_path / "stage", None, {})
    assert ctx.base() == Artifact(resolve("tiny-bert"), "tiny-bert", "hf")
    assert ctx.source() == ctx.base()  # a first stage starts from the recipe's model
    assert ctx.task() is ctx.task() and len(ctx.task().train) == 64
    assert ctx.inputs() is ctx.inputs() and ctx.inputs().num_labels == len(ctx.task().label_names)
    earlier = Artifact(tmp_path / "m", "tiny-bert", "hf", "classifier", ["a", "b"])
    assert StageContext(recipe, 0, tmp_path / "s2", earlier, {"01-finetune": earlier}).source() is earlier
    assert StageResult(earlier).metrics == {}
