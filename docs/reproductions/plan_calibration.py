"""Measured stage times of a finished `tailor repro` against tailor.plan's CPU model, by stage family.

    python docs/reproductions/plan_calibration.py tickets standard runs/repro-tickets-standard

Each stage's `done.json` records its wall seconds; the plan's `stage_costs` gives the model's seconds for
the same stage. The ratio (measured over modelled) per family is what `tailor.plan.HERE_OVER_MODEL` holds.
"""

from __future__ import annotations

import collections
import importlib
import json
import sys
from pathlib import Path

from tailor.plan import MODEL_STEP, cpu_family, stage_costs


def measured_vs_modelled(method: str, profile: str, out: Path) -> dict:
    """{family: [measured s, modelled s, stages]} over every finished stage of every seed under ``out``."""
    repro = importlib.import_module(f"tailor.methods.{method}.repro")
    sums = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for run in repro.planned_runs(profile):
        for folder in (out / "runs").glob(f"{run.recipe['name']}-*"):
            for cost in stage_costs(run, MODEL_STEP):
                if cost["shared"]:
                    continue
                for done in folder.glob(f"seed-*/{cost['id']}/done.json"):
                    row = sums[cpu_family(cost["stage"])]
                    row[0] += json.loads(done.read_text())["seconds"]
                    row[1] += cost["seconds"]
                    row[2] += 1
    return dict(sums)


if __name__ == "__main__":
    method, profile, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    print(f"{'family':18s} {'stages':>6s} {'measured min':>12s} {'modelled min':>12s} {'ratio':>6s}")
    for fam, (measured, modelled, n) in sorted(measured_vs_modelled(method, profile, out).items()):
        print(f"{fam:18s} {n:6d} {measured / 60:12.1f} {modelled / 60:12.1f} {measured / modelled:6.2f}")
