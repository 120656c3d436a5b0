import json
import subprocess
import sys
import time

from tailor.cli import main
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe
from tests.conftest import needs

pytestmark = needs("orangecontrib.text")


def test_run_writes_records_and_rerun_skips_finished_stages(tmp_path, tiny_recipe):
    recipe = parse_recipe(tiny_recipe)
    first = run_recipe(recipe, tmp_path)
    assert first.path.name == f"tiny-{recipe.digest()}"
    res = json.loads((first.path / "results.json").read_text())
    stage = res["seeds"]["0"]["01-finetune"]
    assert {"validation", "test", "train", "seconds"} <= set(stage)
    assert 0 <= stage["test"]["accuracy"] <= 1 and stage["train"]["steps"] == 4
    assert res["environment"]["versions"]["torch"].startswith("2.13")
    assert res["summary"]["01-finetune"]["test/accuracy"]["n"] == 1
    stage_dir = first.path / "seed-0" / "01-finetune"
    assert (stage_dir / "model" / "model.safetensors").is_file()
    assert not (stage_dir / "checkpoints").exists()  # removed once the stage is done
    done = stage_dir / "done.json"
    stamp = done.stat().st_mtime_ns
    second = run_recipe(recipe, tmp_path)
    assert second.results["seeds"] == res["seeds"]  # loaded from done.json, not retrained
    assert done.stat().st_mtime_ns == stamp and not (stage_dir / "checkpoints").exists()


def test_adding_a_seed_keeps_earlier_seeds_in_results(tmp_path, tiny_recipe):
    recipe = parse_recipe(tiny_recipe)
    run_recipe(recipe, tmp_path, seeds=[0])
    both = run_recipe(recipe, tmp_path, seeds=[1])
    assert set(both.results["seeds"]) == {"0", "1"}
    assert both.summary["01-finetune"]["test/accuracy"]["n"] == 2


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: resume\nmodel: tiny-bert\ndata: {name: tweets2016, max_length: 24, train_size: 400, test_size: 32}\n"
        "stages:\n  - finetune: {steps: 200, lr: 1.0e-3, batch_size: 4, save_every: 5}\n"
    )
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "tailor.cli", "run", str(recipe), "--runs", str(runs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(runs.glob("*/seed-0/01-finetune/checkpoints/checkpoint-*/tailor-manifest.json")):
        assert time.time() < deadline and proc.poll() is None, "no checkpoint before the run ended"
        time.sleep(0.05)
    proc.kill()  # mid-stage: 195 of 200 steps still to go
    proc.wait()
    (stage_dir,) = runs.glob("*/seed-0/01-finetune")
    assert not (stage_dir / "done.json").exists()
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    done = json.loads((stage_dir / "done.json").read_text())
    assert done["metrics"]["train"]["resumed_from"] is not None
    assert done["metrics"]["train"]["steps"] == 200


def test_report_writes_table_and_plots(tmp_path, tiny_recipe, capsys):
    run = run_recipe(parse_recipe(tiny_recipe), tmp_path / "runs")
    assert main(["report", str(run.path), "--out", str(tmp_path / "rep")]) == 0
    table = (tmp_path / "rep" / "table.md").read_text()
    assert "| tiny | 01-finetune | 1 |" in table
    assert (tmp_path / "rep" / "test_accuracy.png").stat().st_size > 1000


def test_cli_lists_models_datasets_and_stages(capsys):
    for cmd in ("models", "datasets", "stages"):
        assert main([cmd]) == 0
    out = capsys.readouterr().out
    assert "minilm-l6" in out and "tweets2016" in out and "finetune" in out
