"""`tailor repro <method> --profile P --plan`: every run a profile makes, its settings and a rough cost,
without loading a model or data.

Each recipe is validated (`parse_recipe`: keys, types, stage graph), nothing more. The cost is an
estimate, written by hand because no library does it: optimisation steps per seed from each stage's
`steps`, or `epochs` × training examples / batch; training FLOPs as passes × forward FLOPs per example
× examples seen, where one training pass (forward + backward) counts 3 forwards; and GPU hours at an
ASSUMED sustained 1e14 FLOP/s (bf16 on an A100/H100-class GPU at roughly a third of its peak). It is
good to a factor of about two: attention's quadratic term, evaluation and data loading are ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

ASSUMED_FLOPS = 1e14
TRAIN = 3  # forward + backward, in forward passes
# forward passes per example and step beyond one training pass, by stage (Algorithm 1 of the SD paper:
# masked student fwd+bwd, unmasked student fwd+bwd, teacher fwd; KD-QAT adds the teacher's forward)
PASSES = {"self_distill": 2 * TRAIN + 1, "qat_distill": TRAIN + 1}


@dataclass(frozen=True)
class PlannedRun:
    """One recipe a profile runs, with what the estimate needs."""

    recipe: dict
    examples: int  # training examples per seed, used where data.train_size is not set
    forward_flops: float  # one forward pass over one example: ~2 × parameters × tokens (or patches)
    note: str = ""


def stage_steps(name: str, cfg: dict, examples: int) -> int:
    if cfg.get("steps"):
        return int(cfg["steps"])
    rounds = cfg.get("rounds", 1) if name == "self_distill" else 1
    return rounds * math.ceil(cfg.get("epochs", 3.0) * examples / cfg.get("batch_size", 32))


def stage_passes(name: str, cfg: dict) -> int:
    attack = cfg.get("attack") or {}
    if name in ("robust_pretrain", "draw_ticket") and attack:
        return TRAIN * (attack.get("steps", 10) + 1)  # each PGD step is a forward and a backward
    return PASSES.get(name, TRAIN)


def estimate(run: PlannedRun) -> dict:
    """Steps per seed by stage, and GPU hours for all seeds at ASSUMED_FLOPS."""
    examples = run.recipe["data"].get("train_size") or run.examples
    steps, flops = {}, 0.0
    for i, stage in enumerate(run.recipe["stages"]):
        ((name, cfg),) = stage.items()
        n = stage_steps(name, cfg, examples)
        steps[f"{i + 1:02d}-{name}"] = n
        flops += n * cfg.get("batch_size", 32) * stage_passes(name, cfg) * run.forward_flops
    seeds = len(run.recipe.get("seeds", [0]))
    return {"steps_per_seed": steps, "seeds": seeds, "gpu_hours": seeds * flops / ASSUMED_FLOPS / 3600}


def render(method: str, profile: str, runs: list[PlannedRun]) -> str:
    """The plan as text; raises ConfigError on the first recipe that does not validate."""
    from .recipe import parse_recipe

    lines, total = (
        [
            f"tailor repro {method} --profile {profile}: {len(runs)} runs "
            f"(cost at an assumed {ASSUMED_FLOPS:.0e} FLOP/s; see tailor.plan)"
        ],
        0.0,
    )
    for run in runs:
        parse_recipe(run.recipe, f"{method} {profile} plan: {run.recipe['name']}")
        cost = estimate(run)
        total += cost["gpu_hours"]
        lines += [
            f"\n{run.recipe['name']}: model {run.recipe['model']}, seeds {run.recipe.get('seeds', [0])}"
            + (f"  ({run.note})" if run.note else ""),
            f"  data   {json.dumps(run.recipe['data'])}",
        ]
        lines += [
            f"  {sid}: {steps} steps/seed  {json.dumps(next(iter(stage.values())))}"
            for (sid, steps), stage in zip(cost["steps_per_seed"].items(), run.recipe["stages"])
        ]
        lines.append(f"  estimated {cost['gpu_hours']:.2f} GPU-hours for {cost['seeds']} seed(s)")
    lines.append(f"\ntotal: about {total:.1f} GPU-hours")
    return "\n".join(lines)
