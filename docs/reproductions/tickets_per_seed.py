"""Per-seed values of a tickets reproduction: robust − natural, test accuracy averaged over the tasks.

  python docs/reproductions/tickets_per_seed.py runs/repro-tickets-standard/results.json

Reads the repro's own results.json (one row per pretraining, seed, scheme, sparsity, task and protocol)
and prints one Markdown row per (scheme, protocol, sparsity) with each seed's paired difference in points.
"""

import json
import sys
from collections import defaultdict
from statistics import mean


def main(path: str) -> None:
    rows = json.load(open(path))["rows"]
    acc = defaultdict(list)  # (scheme, protocol, sparsity, pretrain, seed) -> accuracies over the tasks
    for r in rows:
        acc[(r["scheme"], r["protocol"], r["sparsity"], r["pretrain"], r["seed"])].append(r["accuracy"])
    seeds = sorted({r["seed"] for r in rows})
    robust = sorted({r["pretrain"] for r in rows} - {"natural"})
    cells = sorted({k[:3] for k in acc})
    print("| scheme | protocol | sparsity | pretraining | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("|---|---|---|---|" + "---|" * (len(seeds) + 1))
    for scheme, protocol, sparsity in cells:
        for pre in robust:
            d = [
                100
                * (
                    mean(acc[(scheme, protocol, sparsity, pre, s)])
                    - mean(acc[(scheme, protocol, sparsity, "natural", s)])
                )
                for s in seeds
            ]
            print(
                f"| {scheme} | {protocol} | {sparsity} | {pre} | "
                + " | ".join(f"{x:+.2f}" for x in d)
                + f" | {mean(d):+.2f} |"
            )


if __name__ == "__main__":
    main(sys.argv[1])
