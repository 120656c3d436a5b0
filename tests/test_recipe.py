import subprocess
import sys

import pytest

from tailor.config import ConfigError
from tailor.recipe import apply_override, parse_recipe
from tests.conftest import needs

pytestmark = needs("orangecontrib.text")


def test_valid_recipe_fills_defaults(tiny_recipe):
    r = parse_recipe(tiny_recipe)
    (call,) = r.calls
    assert call.name == "finetune"
    assert call.config.steps == 4 and call.config.weight_decay == 0.01  # given, and default
    assert r.resolved()["stages"][0]["finetune"]["scheduler"] == "linear"


@pytest.mark.parametrize(
    "where, key",
    [
        ((), "modle"),
        (("data",), "train_sise"),
        (("stages", 0, "finetune"), "learning_rate"),
    ],
)
def test_unknown_key_is_named_with_valid_choices(tiny_recipe, where, key):
    node = tiny_recipe
    for part in where:
        node = node[part]
    node[key] = 1
    with pytest.raises(ConfigError) as e:
        parse_recipe(tiny_recipe)
    assert f"unknown key '{'.'.join(map(str, (*where, key)))}'" in str(e.value)
    assert "valid keys here" in str(e.value)


def test_wrong_type_names_the_key(tiny_recipe):
    tiny_recipe["stages"][0]["finetune"]["lr"] = "fast"
    with pytest.raises(ConfigError, match=r"'stages\.0\.finetune\.lr'"):
        parse_recipe(tiny_recipe)


def test_unknown_stage_model_and_dataset_list_choices(tiny_recipe):
    bad_stage = {**tiny_recipe, "stages": [{"fintune": {}}]}
    with pytest.raises(ConfigError, match="unknown stage 'fintune'.*finetune"):
        parse_recipe(bad_stage)
    with pytest.raises(ConfigError, match="unknown model 'minilm-l7'.*minilm-l6"):
        parse_recipe({**tiny_recipe, "model": "minilm-l7"})
    with pytest.raises(ConfigError, match="unknown dataset 'tweets'.*tweets2016"):
        parse_recipe({**tiny_recipe, "data": {"name": "tweets"}})


def test_overrides_by_index_and_by_stage_name(tiny_recipe):
    apply_override(tiny_recipe, "stages.0.finetune.lr=0.5")
    apply_override(tiny_recipe, "stages.finetune.batch_size=8")
    apply_override(tiny_recipe, "data.train_size=10")
    r = parse_recipe(tiny_recipe)
    assert (r.calls[0].config.lr, r.calls[0].config.batch_size, r.data.train_size) == (0.5, 8, 10)
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_override(tiny_recipe, "data.train_size")


def test_digest_follows_settings_not_seeds(tiny_recipe):
    a = parse_recipe(tiny_recipe).digest()
    assert parse_recipe({**tiny_recipe, "seeds": [0, 1, 2]}).digest() == a
    tiny_recipe["stages"][0]["finetune"]["lr"] = 0.1
    assert parse_recipe(tiny_recipe).digest() != a


def test_cli_rejects_misspelled_key_before_importing_torch(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "name: bad\nmodel: minilm-l6\ndata: {name: tweets2016}\nstages:\n  - finetune: {epochs: 1, lr_rate: 0.1}\n"
    )
    script = (
        "import sys\nfrom tailor.cli import main\ncode = main(['run', sys.argv[1]])\n"
        "print('torch imported' if 'torch' in sys.modules else 'torch not imported')\nsys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(recipe)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown key 'stages.0.finetune.lr_rate'" in proc.stderr
    assert proc.stdout.strip() == "torch not imported"


def test_the_tickets_papers_transfer_recipe_in_tickets_yaml_parses():
    """The override line documented in recipes/tickets.yaml gives SGD + multistep on the transfer stage."""
    import re
    import shlex
    from pathlib import Path

    from tailor.recipe import load_recipe

    text = (Path(__file__).parents[1] / "recipes" / "tickets.yaml").read_text()
    block = re.search(r"#   tailor run recipes/tickets.yaml (stages\.transfer\.optimizer=sgd.*?)\n(?!#  )", text, re.S)
    overrides = shlex.split(block.group(1).replace("\\\n#    ", " "))
    cfg = next(
        c.config
        for c in load_recipe(Path(__file__).parents[1] / "recipes" / "tickets.yaml", overrides).calls
        if c.name == "transfer"
    )
    assert (cfg.optimizer, cfg.momentum, cfg.weight_decay, cfg.scheduler, cfg.gamma) == (
        "sgd",
        0.9,
        1e-4,
        "multistep",
        0.1,
    )
    assert cfg.milestones == [1.5, 2.25] and cfg.milestones_in == "epochs"
