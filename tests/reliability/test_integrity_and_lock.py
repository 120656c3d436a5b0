"""Fault injection: damaged outputs and checkpoints, changed data, a swapped adapter base, two processes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tailor.artifacts import Artifact, load_model
from tailor.config import ConfigError
from tailor.engine.losses import CrossEntropy
from tailor.engine.settings import TrainSettings
from tailor.engine.trainer import last_complete_checkpoint, train
from tailor.integrity import IntegrityError
from tailor.pipeline import run_dir_for, run_recipe
from tailor.recipe import parse_recipe
from tailor.runlock import RunFolderBusy, run_lock

RECIPE = {
    "name": "fault",
    "model": "tiny-vit",
    "data": {"name": "digits", "image_size": 32, "train_size": 48, "test_size": 32},
    "stages": [{"finetune": {"steps": 2, "batch_size": 16, "lr": 1e-3}}],
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return runs, run_recipe(parse_recipe(RECIPE), runs)


def test_done_json_certifies_the_model_files(finished):
    _, result = finished
    done = json.loads((result.path / "seed-0/01-finetune/done.json").read_text())
    assert "model.safetensors" in done["files"] and "artifact.json" in done["files"]


def test_same_size_garbage_is_refused_by_the_loader(tmp_path, finished):
    import shutil

    _, result = finished
    model = tmp_path / "model"
    shutil.copytree(result.path / "seed-0/01-finetune/model", model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200] + os.urandom(weights.stat().st_size - 200))
    with pytest.raises(IntegrityError, match="model.safetensors \\(content changed\\)"):
        load_model(Artifact.load(model), "classifier", 10)


def test_truncated_output_of_a_finished_stage_is_run_again(tmp_path):
    recipe = parse_recipe(RECIPE)
    first = run_recipe(recipe, tmp_path)
    stage = first.path / "seed-0/01-finetune"
    weights = stage / "model/model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    run_recipe(recipe, tmp_path)
    done = json.loads((stage / "done.json").read_text())
    assert weights.stat().st_size > 1000  # trained and written again
    Artifact.load(stage / "model").verify()  # and whole
    assert "model.safetensors" in done["files"]


def _digits():
    from tailor.engine.inputs import prepare
    from tailor.zoo.data import DataConfig, load_task

    cfg = DataConfig(name="digits", image_size=32, train_size=64, test_size=32)
    return prepare(load_task(cfg), "tiny-vit", cfg)


def test_resume_skips_a_damaged_newest_checkpoint_and_totals_every_segment(tmp_path, caplog):
    from tailor.zoo import models

    inputs = _digits()
    model = lambda: models.load("tiny-vit", "classifier", num_labels=inputs.num_labels)  # noqa: E731
    kw = dict(out_dir=tmp_path, objective=CrossEntropy(), collator=inputs.collator)
    first = train(
        model(), inputs.train, settings=TrainSettings(steps=4, batch_size=16, save_every=2, log_every=1), **kw
    )
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-2", "checkpoint-4"]  # two kept: one to fall back to
    newest = tmp_path / "checkpoints/checkpoint-4/model.safetensors"
    newest.write_bytes(b"\0" * newest.stat().st_size)
    assert last_complete_checkpoint(tmp_path / "checkpoints").endswith("checkpoint-2")
    with caplog.at_level("INFO"):
        second = train(
            model(), inputs.train, settings=TrainSettings(steps=6, batch_size=16, save_every=2, log_every=1), **kw
        )
    assert second.resumed_from.endswith("checkpoint-2") and second.segments == 2 and second.steps == 6
    assert "resuming from checkpoint" in caplog.text and "checkpoint-2" in caplog.text
    assert "unusable" in caplog.text
    assert second.seconds > first.seconds * 0.5 * 2 / 4  # includes the 2 steps of the first segment
    rows = [json.loads(r) for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == sorted(set(steps))  # no duplicated rows after the resume


def test_editing_the_data_file_changes_the_run_folder(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,0\nb,1\n")
    raw = {**RECIPE, "model": "tiny-bert", "data": {"name": str(data)}}
    before = run_dir_for(parse_recipe(raw), tmp_path)
    data.write_text("text,label\na,1\nb,0\n")  # same size, other content
    assert run_dir_for(parse_recipe(raw), tmp_path) != before
    assert parse_recipe(raw).resolved()["fingerprints"]["data"][str(data)].startswith("sha256:")


def test_changing_a_local_model_folder_changes_the_run_folder(tmp_path):
    import shutil

    from tailor.zoo.models import resolve

    folder = tmp_path / "m"
    shutil.copytree(resolve("tiny-bert"), folder)
    raw = {**RECIPE, "model": str(folder), "data": {"name": "tweets2016"}}
    before = run_dir_for(parse_recipe(raw), tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\1\2\3\4")
    assert run_dir_for(parse_recipe(raw), tmp_path) != before


def test_adapter_refuses_a_different_base_naming_both(tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from tailor.methods.vera.adapters import check_base
    from tailor.methods.vera.stages import base_artifact, base_record
    from tailor.zoo.models import resolve

    base = tmp_path / "run/seed-0/01-finetune/model"
    shutil.copytree(resolve("tiny-bert"), base)
    adapter_dir = tmp_path / "run/seed-0/02-vera/model"
    adapter_dir.mkdir(parents=True)
    adapter = Artifact(
        adapter_dir, "tiny-bert", "peft", base=base_record(Artifact(base, "tiny-bert"), adapter_dir, False)
    )
    check_base(adapter, base_artifact(adapter))  # the same base: accepted
    weights = {k: v + 1 for k, v in load_file(str(base / "model.safetensors")).items()}
    save_file(weights, str(base / "model.safetensors"))  # a copied run folder with another base in place
    with pytest.raises(ConfigError, match="trained on base 'tiny-bert'.*found at .*01-finetune/model"):
        check_base(adapter, base_artifact(adapter))


HOLD = (
    "import sys, time; from tailor.runlock import run_lock\n"
    "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(120)\n"
)


def test_second_process_is_refused_naming_the_holder_and_a_killed_holder_is_taken_over(tmp_path, caplog):
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusy, match=f"pid {proc.pid} on host"):
            with run_lock(folder):
                pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with caplog.at_level("WARNING"):
        with run_lock(folder):
            assert json.loads((folder / ".lock-holder.json").read_text())["pid"] == os.getpid()
    assert f"pid {proc.pid}" in caplog.text and "taking over" in caplog.text


def test_two_runs_of_one_recipe_do_not_share_a_folder(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        json.dumps({**RECIPE, "stages": [{"finetune": {"steps": 400, "batch_size": 4, "save_every": 50}}]})
    )
    cmd = [sys.executable, "-m", "tailor.cli", "run", str(recipe), "--runs", str(tmp_path / "runs")]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not list((tmp_path / "runs").glob("*/.lock-holder.json")):
            assert time.time() < deadline and first.poll() is None
            time.sleep(0.1)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        assert second.returncode == 2 and f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
