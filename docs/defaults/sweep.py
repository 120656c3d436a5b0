"""The small sweep that chose the finetune defaults, and the check of the chosen one on five tasks.

The candidates run in the order of QUEUE (the proposed default on all five tasks first, then the
old default and a larger head learning rate for comparison); a finished run is not repeated. Every run is a plain `tailor run` of a one-stage recipe (1,000 training examples, seed 0), so each
row can be re-run by hand; `table` prints the Markdown table with the two baselines next to it.

  python docs/defaults/make_corpora.py runs/corpora            # the two outside-zoo CSV folders
  python docs/defaults/sweep.py run runs/defaults runs/corpora   # ~1-1.5 h on 2 CPU cores
  python docs/defaults/sweep.py table runs/defaults runs/corpora
"""
import json
import subprocess
import sys
from pathlib import Path

import yaml

DATA = {"train_size": 1000, "test_size": 1000, "max_length": 64}
CANDIDATES = {  # name -> finetune settings (at 1,000 examples, 150 steps = a 150-step minimum over 3 epochs)
    "lr1e-4-min150-warm0.1": {"lr": 1e-4, "steps": 150, "warmup_ratio": 0.1},
    "lr1e-4-head2e-3-min150-warm0.1": {"lr": 1e-4, "head_lr": 2e-3, "steps": 150, "warmup_ratio": 0.1},
    "old-default": {"lr": 5e-5, "epochs": 3},  # the CLI's defaults before this sweep (96 steps)
}
# (task, candidate) in the order run: the many-class task where the old default collapses first, old vs
# proposed, then the proposed default on the other tasks (short texts first: cheaper steps).
QUEUE = [("friends-25", "lr1e-4-min150-warm0.1"), ("friends-25", "old-default"),
         ("tweets2016", "lr1e-4-min150-warm0.1"), ("disaster-genre", "lr1e-4-min150-warm0.1"),
         ("disaster-categories", "lr1e-4-min150-warm0.1"), ("reuters-r8", "lr1e-4-min150-warm0.1"),
         ("reuters-r8", "old-default"), ("friends-25", "lr1e-4-head2e-3-min150-warm0.1"),
         ("reuters-r8", "lr1e-4-head2e-3-min150-warm0.1")]
TASKS = list(dict.fromkeys(t for t, _ in QUEUE))


def _data_name(task: str, corpora: Path) -> str:
    return str(corpora / task) if (corpora / task).is_dir() else task


def _run(task: str, cand: str, runs: Path, corpora: Path) -> dict:
    recipe = {"name": f"defaults-{task}-{cand}", "model": "minilm-l6",
              "data": {"name": _data_name(task, corpora), **DATA}, "stages": [{"finetune": CANDIDATES[cand]}]}
    path = runs / "recipes" / f"{task}-{cand}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    subprocess.run([sys.executable, "-m", "tailor.cli", "run", str(path), "--runs", str(runs)], check=True)
    return _results(task, cand, runs)


def _results(task: str, cand: str, runs: Path) -> dict | None:
    found = sorted(runs.glob(f"defaults-{task}-{cand}-*/results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text())["seeds"]["0"]["01-finetune"] if found else None


def run(runs: Path, corpora: Path) -> None:
    for task, cand in QUEUE:
        if _results(task, cand, runs) is None:
            _run(task, cand, runs, corpora)


def table(runs: Path, corpora: Path) -> None:
    from tailor.baselines import baselines_for
    from tailor.zoo.data import DataConfig, load_task

    print("| task | setting | steps | val MCC | test acc % | test macro-F1 % | test MCC | majority acc % "
          "| TF-IDF+linear acc % | TF-IDF+linear MCC | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for task in TASKS:
        base = baselines_for(load_task(DataConfig(name=_data_name(task, corpora), **DATA), 0))
        for cand in CANDIDATES:
            r = _results(task, cand, runs)
            if r is None:
                continue
            t = r["test"]
            print(f"| {task} | {cand} | {r['train']['steps']} | {r['validation']['mcc']:.3f} | {100 * t['accuracy']:.1f} "
                  f"| {100 * t['macro_f1']:.1f} | {t['mcc']:.3f} | {100 * base['majority']['accuracy']:.1f} "
                  f"| {100 * base['linear']['accuracy']:.1f} | {base['linear']['mcc']:.3f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    {"run": run, "table": table}[sys.argv[1]](Path(sys.argv[2]), Path(sys.argv[3]))
