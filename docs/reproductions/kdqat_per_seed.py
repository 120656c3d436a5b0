"""Per-seed test accuracy of a KD-QAT reproduction, and each student's gap to the FP teacher.

  python docs/reproductions/kdqat_per_seed.py runs/std-kdqat/results.json

Reads the repro's own results.json (accuracy per method, task and seed) and prints, per task, one
Markdown row per method with each seed's accuracy in points; then the teacher − student gap (the
paper's "ternary students lose 1-2 points"), paired by seed with `tailor.report.stats.paired`.
"""

import json
import sys

from tailor.methods.kdqat.repro import FP_ROW
from tailor.report.stats import PAIRED_HEADER, fmt_paired, paired


def main(path: str) -> None:
    results = json.load(open(path))
    accuracy, seeds = results["accuracy"], [str(s) for s in results["seeds"]]
    for task in results["tasks"]:
        print(f"\n{task}\n\n| method | " + " | ".join(f"seed {s}" for s in seeds) + " |")
        print("|---|" + "---|" * len(seeds))
        for row, per_task in accuracy.items():
            print(f"| {row} | " + " | ".join(f"{100 * per_task[task][s]:.2f}" for s in seeds) + " |")
        teacher = [accuracy[FP_ROW][task][s] for s in seeds]
        print(f"\n| teacher − student | {' | '.join(PAIRED_HEADER)} |\n|---|" + "---|" * len(PAIRED_HEADER))
        for row, per_task in accuracy.items():
            if row != FP_ROW:
                gap = paired(teacher, [per_task[task][s] for s in seeds]).as_dict()
                print(f"| {row} | " + " | ".join(fmt_paired(gap)) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
