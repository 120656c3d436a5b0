"""Per-seed test values of a self-distillation reproduction, one Markdown row per task and method.

  python docs/reproductions/selfdistill_per_seed.py runs/std-sd/results.json

Reads the repro's own results.json, whose methods carry each seed's value (`per_seed`, in the order of
its `seeds`: the numbers its paired intervals use), and prints them in points.
"""

import json
import sys


def main(path: str) -> None:
    results = json.load(open(path))
    seeds = results["seeds"]
    print("| task | method | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    print("|---|---|" + "---|" * len(seeds))
    for task, entry in results["tasks"].items():
        for method, row in entry.get("methods", {}).items():
            print(f"| {task} | {method} | " + " | ".join(f"{100 * v:.2f}" for v in row["per_seed"]) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
