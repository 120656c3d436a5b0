"""Precision end to end: `precision: fp32` reproduces the code before the setting bit for bit, and a
short bf16 run of every stage family tracks its fp32 run.

Tolerance for bf16 vs fp32: bf16 keeps 8 significant bits, so each autocast matmul rounds its
inputs by up to 2^-8 (0.4 %) relative; over 4 steps of a tiny model the differences compound in
the weights but the mean training loss, an average over steps and examples, moves far less. We
allow 5 % relative on the mean training loss (about 12 times one rounding step) and 2 % on the
loss of the first step (the weights are still identical there, so only the forward's rounding
shows). A real precision bug (a loss computed on rounded codes, a KL in bf16, fp16 overflow, an
fp32 island missing its upcast) moves these by far more, or breaks them (NaN).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tailor.zoo.data import list_datasets
from tests.engine import precision_recipes as pr

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).parents[2]
BEFORE_PRECISION = "0006181"  # main before `precision` existed in TrainSettings


@pytest.fixture(autouse=True)
def _need_data():
    for name in ("tweets2016", "digits"):
        if not any(d.name == name and d.available() for d in list_datasets()):
            pytest.skip(f"{name} is not installed")


def _stage_metrics(run) -> dict:
    return run.results["seeds"]["0"]


def _train_records(metrics: dict) -> dict:
    return metrics["rounds"][-1]["train"] if "rounds" in metrics else metrics["train"]


def _first_losses(run) -> dict[str, float]:
    out = {}
    for stage_dir in sorted(Path(run.path).glob("seed-0/*")):
        rows = (
            [json.loads(line) for line in (stage_dir / "metrics.jsonl").read_text().splitlines()]
            if (stage_dir / "metrics.jsonl").is_file()
            else [json.loads(line) for line in next(stage_dir.glob("round-*/metrics.jsonl")).read_text().splitlines()]
        )
        out[stage_dir.name] = next(r["loss"] for r in rows if "loss" in r)
    return out


def test_fp32_is_bit_for_bit_the_code_before_precision_existed(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE_PRECISION, "src"], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"git history with commit {BEFORE_PRECISION} is not available")
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    env = {**os.environ, "PYTHONPATH": f"{old / 'src'}{os.pathsep}{REPO}"}
    proc = subprocess.run(
        [sys.executable, str(Path(pr.__file__)), str(tmp_path / "old-runs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = json.loads(proc.stdout.strip().splitlines()[-1])
    for family in pr.RECIPES:
        run = pr.run_family(family, "fp32", tmp_path / "new")
        assert pr.digests(run) == before[family], family
        assert all(_train_records(m)["precision"] == "fp32" for m in _stage_metrics(run).values())


@pytest.mark.parametrize("family", list(pr.RECIPES))
def test_bf16_tracks_fp32_and_is_recorded(tmp_path, family):
    fp32 = pr.run_family(family, "fp32", tmp_path)
    bf16 = pr.run_family(family, "bf16", tmp_path)
    results = json.loads((Path(bf16.path) / "results.json").read_text())
    first32, first16 = _first_losses(fp32), _first_losses(bf16)
    for stage, metrics in _stage_metrics(bf16).items():
        record = _train_records(results["seeds"]["0"][stage])
        assert record["precision"] == "bf16" and record["precision_reason"] == "requested"
        loss32, loss16 = _train_records(_stage_metrics(fp32)[stage])["train_loss"], record["train_loss"]
        assert torch.isfinite(torch.tensor(loss16))
        assert loss16 == pytest.approx(loss32, rel=0.05), stage
        assert first16[stage] == pytest.approx(first32[stage], rel=0.02), stage
    assert pr.digests(fp32) != pr.digests(bf16)  # bf16 really ran: the weights differ in their last bits
