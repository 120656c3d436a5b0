"""Run a recipe: one folder per run, per seed and per stage; finished stages are skipped on re-run.

Layout (open_lth style: the folder name is a hash of the resolved settings):

    runs/<recipe-name>-<digest>/
      config.yaml                 the resolved recipe (defaults filled in)
      results.json                metrics per seed and stage, summary, wall time, versions, git commit
      seed-<s>/<NN>-<stage>/      the stage's own folder: model/, metrics.jsonl, tb/, done.json
                                  (or failed.json with the error of a failed attempt)

Before anything is made, `tailor.checks.check_recipe` runs the dry pass; the run folder appears
only once work starts, under a lock (one process per run folder). `done.json` certifies the sha256
of the stage's model files: a finished stage whose files changed is run again, with every stage
after it, instead of being handed on.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from . import scorecard
from .artifacts import Artifact, ArtifactVersionError
from .dist import is_main_process, on_main_process
from .files import atomic_write_text
from .integrity import folder_hashes, mismatches
from .plugins import get_stage
from .recipe import Recipe
from .stages import StageContext, StageResult

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    path: Path
    results: dict

    @cached_property
    def summary(self) -> dict:
        return self.results["summary"]


def run_dir_for(recipe: Recipe, runs_dir: Path) -> Path:
    return Path(runs_dir) / f"{recipe.name}-{recipe.digest()}"


def run_recipe(recipe: Recipe, runs_dir: Path | str = "runs", seeds: list[int] | None = None) -> RunResult:
    """Check the whole recipe, then run every seed and stage; finished, intact stages are loaded, not re-run."""
    from .checks import check_recipe
    from .runlock import run_lock

    seeds = seeds or recipe.seeds
    plan = check_recipe(recipe)  # every check before any work: raises before a folder exists
    run_dir = run_dir_for(recipe, Path(runs_dir))
    if not is_main_process():
        return _run_seeds(recipe, run_dir, seeds, plan)
    with run_lock(run_dir):  # makes the run folder: work starts here
        return _run_seeds(recipe, run_dir, seeds, plan)


def _run_seeds(recipe: Recipe, run_dir: Path, seeds: list[int], plan) -> RunResult:
    if is_main_process():
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(recipe.resolved(), sort_keys=False))
    start = time.time()
    per_seed: dict[str, dict] = {}
    for seed in seeds:
        previous, history = None, {}
        shared = {"task": plan.task} if plan.task is not None and seed == recipe.seeds[0] else {}
        per_seed[str(seed)] = {}
        rerun_rest = False  # an earlier stage was re-run: what came after it is stale
        for i, call in enumerate(recipe.calls):
            stage_id = f"{i + 1:02d}-{call.name}"
            stage_dir = run_dir / f"seed-{seed}" / stage_id
            done = stage_dir / "done.json"
            record = _finished_record(done, rerun_rest)
            if record is not None:
                log.info("seed %s, stage %s: already done, skipping", seed, stage_id)
            else:
                rerun_rest = rerun_rest or done.exists()
                done.unlink(missing_ok=True)
                log.info("seed %s, stage %s: running", seed, stage_id)
                ctx = StageContext(recipe, seed, stage_dir, previous, dict(history), shared)
                record = _run_stage(call, ctx)
            if record["artifact"]:
                previous = Artifact.load(stage_dir / record["artifact"])
                history[stage_id] = previous
            per_seed[str(seed)][stage_id] = {"seconds": record["seconds"], **record["metrics"]}
    per_seed = {**finished_seeds(run_dir), **per_seed}  # seeds run by earlier commands stay in the record
    results = {
        "recipe": recipe.name,
        "digest": recipe.digest(),
        "config": recipe.resolved(),
        "seeds": per_seed,
        "summary": summarize(per_seed),
        "wall_seconds": time.time() - start,
        "environment": environment(),
    }
    if is_main_process():
        atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2))
    return RunResult(run_dir, results)


def _finished_record(done: Path, stale: bool) -> dict | None:
    """done.json's record if the stage can be skipped: finished, not stale, and its files intact."""
    if stale or not done.is_file():
        return None
    record = json.loads(done.read_text())
    if record.get("artifact"):
        try:
            Artifact.load(done.parent / record["artifact"])
        except ArtifactVersionError as e:
            log.warning(
                "%s: finished by another version of tailor (%s): running it again, and every later stage",
                done.parent,
                e,
            )
            return None
    if record.get("artifact") and "files" in record:
        bad = mismatches(done.parent / record["artifact"], record["files"])
        if bad:
            log.warning(
                "%s: finished, but its output changed since (%s): running it again, and every later stage",
                done.parent,
                ", ".join(bad),
            )
            return None
    return record


def _run_stage(call, ctx: StageContext) -> dict:
    """Run one stage; record done.json (with the sha256 of its model files) or failed.json (the error)."""
    import transformers

    stage_dir = ctx.stage_dir
    stage_dir.mkdir(parents=True, exist_ok=True)
    transformers.set_seed(ctx.seed)
    t0 = time.time()
    try:
        result: StageResult = get_stage(call.name).load_runner()(call.config, ctx)
    except BaseException as e:
        failure = {"stage": call.name, "error": f"{type(e).__name__}: {e}"[:4000], "seconds": time.time() - t0}
        on_main_process(lambda: _record_failure(stage_dir / "failed.json", failure))
        raise
    record = {
        "stage": call.name,
        "seconds": time.time() - t0,
        "metrics": scorecard.attach(result.metrics, ctx.task(), stage_dir),
        "artifact": os.path.relpath(result.artifact.path, stage_dir) if result.artifact else None,
    }
    on_main_process(lambda: _mark_done(stage_dir / "done.json", record, result.artifact))
    return record


def _record_failure(path: Path, failure: dict) -> None:
    try:
        atomic_write_text(path, json.dumps(failure, indent=2))
    except OSError:  # e.g. the disk is full: the original error is the one to report
        log.warning("could not write %s", path)


def _mark_done(done: Path, record: dict, artifact: Artifact | None) -> None:
    """Certify the artifact (sha256 of every file, in artifact.json and done.json), write `done.json`
    (last, so a stage without it is unfinished) and drop the resume checkpoints and any failure record."""
    if artifact is not None:
        Artifact.load(artifact.path).write()  # re-hash: some stages add files after their first save
        record["files"] = folder_hashes(artifact.path)
    atomic_write_text(done, json.dumps(record, indent=2))
    (done.parent / "failed.json").unlink(missing_ok=True)
    for ckpt in sorted(done.parent.rglob("checkpoints")):
        shutil.rmtree(ckpt, ignore_errors=True)


def finished_seeds(run_dir: Path) -> dict[str, dict]:
    """Metrics of every seed already on disk (from done.json), so adding seeds keeps the old ones."""
    out: dict[str, dict] = {}
    for done in sorted(run_dir.glob("seed-*/*/done.json")):
        record = json.loads(done.read_text())
        seed = done.parent.parent.name.removeprefix("seed-")
        out.setdefault(seed, {})[done.parent.name] = {"seconds": record["seconds"], **record["metrics"]}
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def summarize(per_seed: dict[str, dict]) -> dict:
    """Mean and std over seeds of every numeric metric, per stage (nested keys joined with '/')."""
    values: dict[str, dict[str, list[float]]] = {}
    for stages in per_seed.values():
        for stage_id, metrics in stages.items():
            for key, value in _flatten(metrics).items():
                values.setdefault(stage_id, {}).setdefault(key, []).append(value)
    return {
        stage_id: {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for k, v in metrics.items()}
        for stage_id, metrics in values.items()
    }


def _flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def environment() -> dict:
    """Package versions, machine and git commit: what a reader needs to trust a number."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions = {}
    for pkg in ("tailor", "torch", "transformers", "peft", "accelerate", "datasets", "safetensors"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
        "torch_threads": torch.get_num_threads(),
        "git_commit": commit,
    }
