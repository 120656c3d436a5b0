"""A method plugs in through one declaration: a toy method in a temporary package, found through its
entry point, gets its stage run by a recipe, its format loaded, and its repro, bench and command
reached through the CLI, with no file of tailor touched."""

import json
import sys
import textwrap

import pytest

from tailor import plugins
from tailor.cli import main

TOY_INIT = '''
"""A toy method: one stage that saves the base model under its own format."""
from typing import Literal

from tailor.config import StrictModel
from tailor.plugins import declare_method


class ToyConfig(StrictModel):
    scale: float = 1.0
    mode: Literal["a", "b"] = "a"


declare_method(
    "toy", __name__, "a method in another package",
    stages=[("toy_stage", ToyConfig, ".stages:run_toy", "saves the base model in the toy format")],
    formats={"toy_format": ".stages:load_toy"},
    repro=".parts", bench=".bench", commands=".parts",
)
'''
TOY_STAGES = """
from tailor.artifacts import Artifact, load_hf, save_hf
from tailor.stages import StageContext, StageResult


def run_toy(cfg, ctx: StageContext) -> StageResult:
    model = ctx.load(ctx.source(), head="classifier", num_labels=2)
    art = save_hf(model, ctx.stage_dir / "model", ctx.recipe.model, format="toy_format")
    return StageResult(art, {"toy/scale": cfg.scale})


def load_toy(artifact: Artifact, head, num_labels):
    model = load_hf(artifact, head, num_labels)
    model.loaded_by_toy = True
    return model
"""
TOY_PARTS = """
from pathlib import Path


def run(profile: str, out: Path, seeds=None) -> dict:
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "toy.txt").write_text(f"{profile} {seeds}")
    return {"profile": profile}


def register(subparsers) -> None:
    p = subparsers.add_parser("toy-hello", help="say hello")
    p.set_defaults(func=lambda args: print("hello from toy"))
"""
TOY_BENCH = """
def run(out) -> dict:
    return {"toy_speedup": 1.5}


def markdown(result) -> str:
    return f"toy speedup {result['toy_speedup']}x"
"""


@pytest.fixture
def toy_method(tmp_path, monkeypatch):
    pkg = tmp_path / "toy_method"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(TOY_INIT))
    (pkg / "stages.py").write_text(textwrap.dedent(TOY_STAGES))
    (pkg / "parts.py").write_text(textwrap.dedent(TOY_PARTS))
    (pkg / "bench.py").write_text(textwrap.dedent(TOY_BENCH))
    dist = tmp_path / "toy_method-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-method\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tailor.methods]\ntoy = toy_method\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.rediscover()
    yield
    for registry in (plugins._METHODS, plugins._STAGES, plugins._FORMATS):
        for key in [k for k in registry if k.startswith("toy")]:
            del registry[key]
    for name in [m for m in sys.modules if m.startswith("toy_method")]:
        del sys.modules[name]
    monkeypatch.undo()
    plugins.rediscover()


def test_the_toy_method_is_discovered_with_its_stage_format_and_parts(toy_method):
    method = plugins.get_method("toy")
    assert [s.name for s in method.stages] == ["toy_stage"]
    assert plugins.get_stage("toy_stage").runner == "toy_method.stages:run_toy"
    assert plugins.format_loader("toy_format").__name__ == "load_toy"
    assert set(method.parts) == {"repro", "bench", "commands"}
    assert {"finetune", "kdqat", "selfdistill", "tickets", "vera"} <= set(plugins.all_methods())


def test_a_recipe_runs_the_toy_stage_and_the_next_stage_loads_its_format(toy_method, tmp_path):
    from tailor.artifacts import load_model
    from tailor.pipeline import run_recipe
    from tailor.recipe import parse_recipe

    recipe = parse_recipe(
        {
            "name": "toy",
            "model": "tiny-bert",
            "seeds": [0],
            "data": {"name": "tweets2016", "train_size": 16, "test_size": 16, "max_length": 16},
            "stages": [{"toy_stage": {"scale": 2.0}}],
        }
    )
    result = run_recipe(recipe, tmp_path / "runs")
    assert result.results["seeds"]["0"]["01-toy_stage"]["toy/scale"] == 2.0
    from tailor.artifacts import Artifact

    art = Artifact.load(result.path / "seed-0" / "01-toy_stage" / "model")
    assert art.format == "toy_format" and load_model(art, "classifier", 2).loaded_by_toy


def test_a_bad_toy_config_is_refused_with_the_valid_choices(toy_method):
    from tailor.config import ConfigError
    from tailor.recipe import parse_recipe

    with pytest.raises(ConfigError, match="'a', 'b'|a.*b"):
        parse_recipe(
            {
                "name": "toy",
                "model": "tiny-bert",
                "data": {"name": "tweets2016"},
                "stages": [{"toy_stage": {"mode": "c"}}],
            }
        )


def test_the_cli_reaches_the_toy_repro_bench_and_command(toy_method, tmp_path, capsys):
    assert main(["repro", "toy", "--out", str(tmp_path / "r"), "--seeds", "3"]) == 0
    assert (tmp_path / "r" / "toy.txt").read_text() == "quick [3]"
    assert main(["bench", "toy", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "bench.json").read_text()) == {"toy_speedup": 1.5}
    assert (tmp_path / "b" / "bench.md").read_text() == "toy speedup 1.5x"
    assert main(["toy-hello"]) == 0
    assert "hello from toy" in capsys.readouterr().out
    assert main(["methods"]) == 0
    assert "toy" in capsys.readouterr().out


def test_a_second_declaration_of_a_taken_stage_name_is_refused(toy_method):
    from tailor.methods.finetune.config import FinetuneConfig

    with pytest.raises(ValueError, match="already registered"):
        plugins.declare_method("other", "other_pkg", "x", stages=[("finetune", FinetuneConfig, "other_pkg:run", "")])


@pytest.mark.parametrize("kind, params", [("repro", ["profile", "out", "seeds"]), ("bench", ["out"])])
def test_every_builtin_repro_and_bench_keeps_the_protocol_signature(kind, params):
    import inspect

    for name, method in plugins.all_methods().items():
        if kind in method.parts:
            parameters = list(inspect.signature(method.part(kind).run).parameters.values())
            assert [p.name for p in parameters[: len(params)]] == params, name
            assert all(p.default is not inspect.Parameter.empty for p in parameters[len(params) :]), name
