"""Per-seed test values of a VeRA reproduction, one Markdown row per setting and method.

  python docs/reproductions/vera_per_seed.py runs/std-vera/results.json

Reads the repro's own results.json, whose rows carry each seed's value (`per_seed`, the numbers its
paired intervals use), and prints accuracy in points (perplexity as it is).
"""

import json
import sys


def main(path: str) -> None:
    results = json.load(open(path))
    seeds = [str(s) for s in results["seeds"]]
    print("| setting | method | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    print("|---|---|" + "---|" * len(seeds))
    for row in results["rows"]:
        scale = 1 if row["metric"] == "perplexity" else 100
        values = [row.get("per_seed", {}).get(s) for s in seeds]
        cells = ["—" if v is None else f"{scale * v:.2f}" for v in values]
        print(f"| {row['setting']} | {row['method']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
