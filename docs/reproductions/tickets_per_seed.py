"""Per-seed values of a tickets reproduction: robust − natural, test accuracy averaged over the tasks.

  python docs/reproductions/tickets_per_seed.py runs/repro-tickets-standard/results.json

Reads the repro's own results.json (one row per pretraining, seed, scheme, sparsity, task and protocol)
and prints one Markdown row per (scheme, protocol, sparsity) with each seed's paired difference in points,
from the same per-seed task means the repro's paired intervals use (`tickets.repro.task_mean_by_seed`).
"""

import json
import sys
from statistics import mean

from tailor.methods.tickets.repro import _group, task_mean_by_seed


def main(path: str) -> None:
    rows = json.load(open(path))["rows"]
    seeds = sorted({r["seed"] for r in rows})
    robust = sorted({r["pretrain"] for r in rows} - {"natural"})
    print("| scheme | protocol | sparsity | pretraining | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("|---|---|---|---|" + "---|" * (len(seeds) + 1))
    for scheme, protocol, sparsity in sorted({(r["scheme"], r["protocol"], r["sparsity"]) for r in rows}):
        cell = {"scheme": scheme, "protocol": protocol, "sparsity": sparsity}
        natural = task_mean_by_seed(_group(rows, pretrain="natural", **cell))
        for pre in robust:
            arm = task_mean_by_seed(_group(rows, pretrain=pre, **cell))
            d = [100 * (arm[s] - natural[s]) for s in seeds]
            print(
                f"| {scheme} | {protocol} | {sparsity} | {pre} | "
                + " | ".join(f"{x:+.2f}" for x in d)
                + f" | {mean(d):+.2f} |"
            )


if __name__ == "__main__":
    main(sys.argv[1])
