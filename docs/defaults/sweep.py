"""The small sweep that chose the finetune defaults, and the bar: the chosen defaults on five tasks.

Each (task, setting, seed) is one run; a finished run is not repeated. `default` is the bar, run as a
user would: `tailor finetune --model minilm-l6 --data X --train-size 1000 --test-size 1000` with no
hyperparameter (test_size also caps validation; it only keeps evaluation cheap). The other settings
are one-stage `tailor run` recipes that spell out every value they change from today's defaults.
`table` prints the Markdown table with the baselines each run recorded (same training examples,
same test split).

  python docs/defaults/make_corpora.py runs/corpora              # the three outside-zoo CSV folders
  python docs/defaults/sweep.py run runs/defaults runs/corpora     # the whole queue, ~1.5 h on 2 busy cores
  python docs/defaults/sweep.py table runs/defaults runs/corpora
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

DATA = {"train_size": 1000, "test_size": 1000}  # max_length: the CLI's default, 128
# the CLI's before (the pooler was kept then)
OLD = {"lr": 5e-5, "epochs": 3, "warmup_ratio": 0.0, "head_lr": None, "min_steps": None, "pooler": "keep"}
SETTINGS = {  # name -> finetune settings; `default` = none given
    "old-default": OLD,
    "lr1e-4-warm0.1-150": {**OLD, "lr": 1e-4, "warmup_ratio": 0.1, "min_steps": 150},
    "default": {},  # lr 1e-4, head_lr 2e-3, warmup_ratio 0.1, epochs 3, min_steps 150, pooler reinit
    "pooler-keep": {"pooler": "keep"},  # the defaults until the pooler runs (they ran as `default` then)
    "min_steps300": {"min_steps": 300, "pooler": "keep"},  # those with twice the steps
    # minilm-l6's pooler (never trained by its sentence objective) drawn anew: the same as `default` now,
    # run as a recipe while `keep` was the default; it chose today's default
    "pooler-reinit": {"pooler": "reinit"},
}
TASKS = ["tweets2016", "disaster-genre", "reuters-r8", "disaster-categories", "grimm-34", "friends-25"]
QUEUE = [  # (task, setting, seed), in the order run: the bar, a many-class task with the old defaults, the task
    # the defaults lose with twice the steps, then the rest
    *[(t, "pooler-keep", 0) for t in ["disaster-categories", "tweets2016", "disaster-genre", "reuters-r8", "grimm-34"]],
    ("disaster-categories", "old-default", 0),
    ("grimm-34", "min_steps300", 0),
    ("friends-25", "pooler-keep", 0),
    ("disaster-categories", "lr1e-4-warm0.1-150", 0),
    *[
        (t, "pooler-reinit", 0)
        for t in ["grimm-34", "disaster-categories", "reuters-r8", "tweets2016", "disaster-genre"]
    ],
    ("friends-25", "pooler-reinit", 0),
    *[(t, "default", s) for s in (1, 2) for t in TASKS],
]


def _name(task: str, setting: str, seed: int) -> str:
    return f"defaults-{task}-{setting}-s{seed}"


def _data(task: str, corpora: Path) -> str:
    return str(corpora / task) if (corpora / task).is_dir() else task


def _run(task: str, setting: str, seed: int, runs: Path, corpora: Path) -> None:
    name, data = _name(task, setting, seed), _data(task, corpora)
    if setting == "default":
        argv = ["finetune", "--model", "minilm-l6", "--data", data, "--train-size", "1000", "--test-size", "1000"]
        argv += ["--name", name]
    else:
        path = runs / "recipes" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        recipe = {"name": name, "model": "minilm-l6", "data": {"name": data, **DATA}}
        path.write_text(yaml.safe_dump({**recipe, "stages": [{"finetune": SETTINGS[setting]}]}, sort_keys=False))
        argv = ["run", str(path)]
    cli = [sys.executable, "-m", "tailor.cli", *argv, "--runs", str(runs), "--seeds", str(seed)]
    subprocess.run(cli, check=True)


def _results(task: str, setting: str, seed: int, runs: Path) -> dict | None:
    found = sorted(runs.glob(f"{_name(task, setting, seed)}-*/results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text())["seeds"][str(seed)]["01-finetune"] if found else None


def run(runs: Path, corpora: Path) -> None:
    for task, setting, seed in QUEUE:
        if _results(task, setting, seed, runs) is None:
            _run(task, setting, seed, runs, corpora)


def table(runs: Path, corpora: Path) -> None:
    print(
        "| task | setting | seed | steps | val MCC | test acc % | test macro-F1 % | test MCC | majority acc % "
        "| TF-IDF+linear acc % | TF-IDF+linear MCC | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for task in TASKS:
        for setting in SETTINGS:
            for seed in (0, 1, 2):
                r = _results(task, setting, seed, runs)
                if r is None:
                    continue
                t, base = r["test"], r["baselines"]
                print(
                    f"| {task} | {setting} | {seed} | {r['train']['steps']} | {r['validation']['mcc']:.3f} "
                    f"| {100 * t['accuracy']:.1f} | {100 * t['macro_f1']:.1f} | {t['mcc']:.3f} "
                    f"| {100 * base['majority']['accuracy']:.1f} | {100 * base['linear']['accuracy']:.1f} "
                    f"| {base['linear']['mcc']:.3f} | {r['train']['seconds']:.0f} |"
                )


if __name__ == "__main__":
    {"run": run, "table": table}[sys.argv[1]](Path(sys.argv[2]), Path(sys.argv[3]))
