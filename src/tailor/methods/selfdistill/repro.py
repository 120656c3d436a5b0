"""``tailor repro selfdistill``: fine-tuning vs further pre-training vs self-distillation on real data.

Every compared method is a recipe run through ``tailor.pipeline.run_recipe``:

* ``finetune``          : finetune
* ``further_pretrain``  : further_pretrain -> finetune
* ``self_distill``      : further_pretrain -> self_distill -> finetune
* full profile adds the baselines (``recadam``= L2-to-pretrained, ``mars``, ``r3f``), the Table 3
  ablations (``sd_no_mae``, ``sd_prediction``, ``sd_weight_l2``, ``sd_weight_mars``, ``fpt_x2``), two SD
  rounds (``sd_rounds2``) and a train-size sweep (the paper's CIFAR-100 Figure 3 at our scale: D_u
  shrinks with the labeled set); ``standard-ablations`` adds the Table 3 ablations and two rounds to the
  standard text task.

The standard profile's image task starts from a ViT-MAE that tailor pre-trains first on another
image domain (``source_mae``), so FPT and SD continue the model's own objective with its own decoder.

The teacher's further_pretrain stage is computed once per (task, seed) and shared by the
self-distillation recipes (its stage folder is hard-linked into their run folders, so the pipeline
treats it as done: same model, data, seed and settings give the same stage).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...config import ConfigError
from ...files import atomic_write_text
from ...pipeline import environment, run_dir_for, run_recipe
from ...recipe import parse_recipe
from ...report.plots import finish
from ...report.stats import PAIRED_HEADER, fmt_paired, paired
from ...report.tables import markdown_table
from ...zoo import models as model_zoo
from ...zoo.data import list_datasets
from ..finetune.config import REPRO_SCHEDULE
from .source_mae import SourceMAE, pretrained

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    name: str
    model: str
    data: dict
    metric: str  # the paper's: macro-F1 for text, accuracy for images
    finetune: dict
    pretrain: dict  # further_pretrain / self_distill settings
    examples: int = 0  # training examples when data.train_size is unset (for --plan's estimate)
    forward_flops: float = 0.0  # one forward over one example, ~2 × params × tokens (for --plan)
    source: SourceMAE | None = None  # a model tailor pre-trains first; `model` is then a placeholder for --plan


@dataclass(frozen=True)
class Profile:
    tasks: tuple[Task, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    sweep: tuple[int, ...] = ()  # train sizes for the sweep task
    sweep_task: int = 0  # index in `tasks` of the sweep task
    notes: list[str] = field(default_factory=list)


def _text_task(
    name: str, train_size: int, ft_epochs: float, pt_steps: int, warmup: int, test_size: int, max_length: int
) -> Task:
    return Task(
        name,
        "minilm-l6",
        {"name": name, "train_size": train_size, "test_size": test_size, "max_length": max_length},
        "macro_f1",
        {
            "epochs": ft_epochs,
            "batch_size": 16,
            "lr": 1e-4,
            "warmup_ratio": 0.1,
            "log_every": 10,
            "eval_batch_size": 100,
        },
        {"steps": pt_steps, "batch_size": 16, "lr": 1e-4, "head_warmup_steps": warmup, "log_every": 10},
        forward_flops=2 * 22.7e6 * max_length,
    )


def _standard_task(name: str) -> Task:
    """1,000 labeled examples = D_u; 500 FPT and SD steps at batch 8 (4 epochs of D_u); the new MLM head
    warmed up on a general corpus (`GENERAL_CORPUS`), so further pre-training is a domain shift."""
    task = _text_task(name, 1000, 3, 500, 200, 400, 32)
    return dataclasses.replace(
        task, pretrain={**task.pretrain, "batch_size": 8, "log_every": 50, "head_warmup_corpus": GENERAL_CORPUS}
    )


def _image_task(train_size: int, ft_epochs: float, pt_steps: int, warmup: int, test_size: int) -> Task:
    return Task(
        "fashion-mnist",
        "dinov2-s",
        {"name": "fashion-mnist", "train_size": train_size, "test_size": test_size, "image_size": 56},
        "accuracy",
        {
            "epochs": ft_epochs,
            "batch_size": 16,
            "lr": 1e-4,
            "warmup_ratio": 0.1,
            "log_every": 10,
            "eval_batch_size": 100,
        },
        {
            "steps": pt_steps,
            "batch_size": 16,
            "lr": 1.5e-4,
            "adam_betas": (0.9, 0.95),
            "mask_ratio": 0.75,
            "head_warmup_steps": warmup,
            "log_every": 10,
        },
        forward_flops=2 * 22.1e6 * ((56 // 14) ** 2 + 1),  # dinov2-s: 14-px patches and [CLS]
    )


MNIST_MAE = SourceMAE(  # the paper's own settings where they fit (Table 9 ViT: betas, mask ratio, normalised pixels)
    "vit-mae-mnist",
    data={"name": "mnist-5k", "test_size": 500},
    pretrain={
        "steps": 1500,  # 26 epochs of the 3,600 digits left for training after the test and validation splits
        "batch_size": 64,
        "lr": 1e-3,  # from scratch and short: above Table 9's 1.5e-4 for continuing a pre-trained MAE
        "weight_decay": 0.05,  # MAE's pre-training value
        "warmup_ratio": 0.05,
        "adam_betas": (0.9, 0.95),
        "mask_ratio": 0.75,
        "log_every": 100,
        "head_warmup_steps": 0,  # nothing new to warm up: a ViT-MAE carries its decoder
    },
)


def _mae_image_task() -> Task:
    """The MNIST-pre-trained ViT-MAE adapted to Fashion-MNIST, its own decoder and MAE loss throughout:
    1,000 labeled images = D_u; FPT and SD at Table 9's ViT settings (batch 64, lr 1.5e-4), 300 steps
    (19 epochs of D_u: many passes over a small D_u, the paper's over-fitting regime); fine-tuning 5
    epochs at batch 32."""
    src = MNIST_MAE
    return Task(
        "fashion-mnist",
        f"<runs>/sd-source-{src.name}-<digest>/seed-0/01-further_pretrain/model",  # `pretrained` gives the path
        {"name": "fashion-mnist", "train_size": 1000, "test_size": 1000, "image_size": src.image_size},
        "accuracy",
        {"epochs": 5, "batch_size": 32, "lr": 5e-4, "warmup_ratio": 0.1, "log_every": 20, "eval_batch_size": 250},
        {
            "steps": 300,
            "batch_size": 64,
            "lr": 1.5e-4,
            "adam_betas": (0.9, 0.95),
            "mask_ratio": 0.75,
            "head_warmup_steps": 0,  # the decoder is the source pre-training's
            "log_every": 50,
        },
        forward_flops=src.forward_flops,
        source=src,
    )


GENERAL_CORPUS = "book-excerpts"  # tailor.zoo.text_corpora: fiction, not the target task's domain
CORE = ("finetune", "further_pretrain", "self_distill")
TABLE3 = ("sd_no_mae", "sd_prediction", "fpt_x2", "sd_weight_l2", "sd_weight_mars")  # each should lose to SD
FULL_EXTRA = ("recadam", "mars", "r3f", *TABLE3, "sd_rounds2")  # sd_rounds2: Fig. 4, a marginal gain over one


def profiles() -> dict[str, Profile]:
    return {
        "quick": Profile(
            tasks=(
                _text_task("tweets2016", 128, 3, 24, 12, 200, 32),
                _text_task("disaster-genre", 128, 3, 24, 12, 200, 32),
                _image_task(128, 3, 24, 12, 200),
            ),
            methods=CORE,
        ),
        "full": Profile(
            tasks=(
                _text_task("tweets2016", 500, 10, 300, 100, 1000, 64),
                _text_task("disaster-genre", 500, 10, 300, 100, 1000, 64),
                _image_task(500, 10, 300, 100, 1000),
            ),
            methods=CORE + FULL_EXTRA,
            sweep=(100, 250, 500, 1000, 2000),
        ),
        # sized for an hour on 2 cores with bf16 (ran 63 min; docs/reproductions/selfdistill.md), 5 seeds, the
        # central comparison only (FT, FPT, SD): minilm-l6 with a general-domain MLM head on disaster-genre,
        # and a ViT-MAE pre-trained here on MNIST digits, with its own decoder, on Fashion-MNIST
        "standard": Profile(
            tasks=(_standard_task("disaster-genre"), _mae_image_task()),
            methods=CORE,
            seeds=(0, 1, 2, 3, 4),
        ),
        # the standard profile's arms plus the ablations; with the standard run's runs/ folder copied
        # into --out first, only the ablation arms train (docs/reproductions/selfdistill.md)
        "standard-ablations": Profile(
            tasks=(_standard_task("disaster-genre"),),
            methods=(
                *CORE,
                "sd_no_mae",
                "sd_prediction",
                "sd_weight_l2",
                "fpt_x2",
                "sd_rounds2",
                "sd_weight_mars",
            ),  # run in this order
            seeds=(0, 1, 2, 3, 4),
        ),
        # the paper's own models, data (hub ids, not reachable from this machine: unverified) and Table 9
        "paper": Profile(
            tasks=(
                _paper_text_task("chemprot", "zapsdcn/chemprot", "micro_f1", 4169),
                _paper_text_task("sciie", "zapsdcn/sciie", "macro_f1", 3219),
                _paper_text_task("citation_intent", "zapsdcn/citation_intent", "macro_f1", 1688),
                _paper_image_task(10_000),
            ),
            methods=CORE + FULL_EXTRA,
            seeds=(0, 1, 2, 3, 4),
            sweep=(1000, 2500, 5000, 10_000, 20_000, 50_000),
            sweep_task=3,
        ),
    }


def planned_runs(profile: str) -> list:
    """Every recipe ``run(profile)`` makes, for ``tailor repro selfdistill --plan`` (nothing is loaded)."""
    from ...plan import PlannedRun

    prof = profiles()[profile]
    sources = {task.source.name: task.source for task in prof.tasks if task.source}.values()
    out = [
        PlannedRun(src.recipe(str(src.init_folder(Path("<out>")))), 0, src.forward_flops, "source pre-training")
        for src in sources
    ]
    runs = [(task, task.data) for task in prof.tasks]
    if prof.sweep:
        sweep = prof.tasks[prof.sweep_task]
        runs += [(sweep, {**sweep.data, "train_size": n}) for n in prof.sweep]
    for task, data in runs:
        methods = prof.methods if data is task.data else CORE
        for method in methods:
            recipe = _recipe_dict(method, task, prof.seeds, data)
            # `_run_methods` hard-links the further_pretrain run's teacher into the self-distillation recipes
            shared = int("further_pretrain" in methods and _shares_teacher(method, next(iter(recipe["stages"][0]))))
            out.append(PlannedRun(recipe, task.examples, task.forward_flops, shared=shared))
    return out


def _shares_teacher(method: str, first_stage: str) -> bool:
    """Whether ``method``'s recipe reuses the further_pretrain run's teacher (its first stage)."""
    return method not in ("further_pretrain", "fpt_x2") and first_stage == "further_pretrain"


def _paper_text_task(name: str, hub: str, metric: str, examples: int) -> Task:
    """RoBERTa (the paper does not say base or large: base) on a Gururangan et al. (2020) task, Table 9:
    further pre-training and SD 100 epochs at batch 128, lr 1e-4; fine-tuning 10 epochs at batch 16
    (Table 9; Sec. 5 says 32), lr 2e-5; weight decay 0.01, linear decay. Unstated (spec §3.3), ours:
    max length 256, warm-up 6 % (RoBERTa's GLUE recipe), mask rate 0.15 with 80/10/10."""
    return Task(
        name,
        "FacebookAI/roberta-base",
        {"name": hub, "max_length": 256, "validation_size": 0.1},
        metric,
        {"epochs": 10, "batch_size": 16, "lr": 2e-5, "weight_decay": 0.01, "warmup_ratio": 0.06},
        {"epochs": 100, "batch_size": 128, "lr": 1e-4, "weight_decay": 0.01},
        examples,
        2 * 125e6 * 256,
    )


def _paper_image_task(train_size: int) -> Task:
    """MAE ViT-B/16 on CIFAR-100 at 224 px (the paper's Fig. 3 study; its Table 1 datasets are not on
    the hub), Table 9 and the authors' scripts (spec §8): further pre-training and SD 20,000 steps at
    batch 64, lr 1.5e-4, AdamW (0.9, 0.95), no warm-up, mask ratio 0.75, normalised pixels;
    fine-tuning 10,000 steps at batch 32, lr 1e-4, 500 warm-up steps, clipping at 1.0."""
    return Task(
        "cifar100",
        "facebook/vit-mae-base",
        {
            "name": "uoft-cs/cifar100",
            "image_column": "img",
            "label_column": "fine_label",
            "train_size": train_size,
            "image_size": 224,
            "validation_size": 0.1,
        },
        "accuracy",
        {
            "steps": 10_000,
            "batch_size": 32,
            "lr": 1e-4,
            "weight_decay": 0.01,
            "warmup_ratio": 0.05,
            "max_grad_norm": 1.0,
        },
        {
            "steps": 20_000,
            "batch_size": 64,
            "lr": 1.5e-4,
            "weight_decay": 0.01,
            "adam_betas": (0.9, 0.95),
            "warmup_ratio": 0.0,
            "mask_ratio": 0.75,
            "norm_pix_loss": True,
        },
        train_size,
        2 * 86e6 * 197,
    )


def stages_for(method: str, task: Task) -> list[dict]:
    """The recipe stages of one compared method (the paper's Table 1-3 rows)."""
    ft, pt = {**REPRO_SCHEDULE, **task.finetune}, task.pretrain
    regularizers = {
        "recadam": {"kind": "l2_to_pretrained", "coef": 0.01},
        "mars": {"kind": "mars", "radius": 1.0},
        "r3f": {"kind": "r3f", "coef": 1.0, "eps": 1e-5},
    }
    if method == "finetune":
        return [{"finetune": ft}]
    if method in regularizers:
        return [{"finetune": {**ft, "regularizer": regularizers[method]}}]
    if method == "further_pretrain":
        return [{"further_pretrain": pt}, {"finetune": ft}]
    if method == "fpt_x2":
        budget = {"steps": 2 * pt["steps"]} if "steps" in pt else {"epochs": 2 * pt["epochs"]}
        return [{"further_pretrain": {**pt, **budget}}, {"finetune": ft}]
    variants = {
        "self_distill": {},
        "sd_rounds2": {"rounds": 2},
        "sd_no_mae": {"mae_weight": 0.0},
        "sd_prediction": {"match": "prediction"},
        "sd_weight_l2": {"match": "weight_l2"},
        "sd_weight_mars": {"match": "weight_mars"},
    }
    if method not in variants:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(CORE + FULL_EXTRA)}")
    return [{"further_pretrain": pt}, {"self_distill": {**pt, **variants[method]}}, {"finetune": ft}]


def _recipe_dict(method: str, task: Task, seeds, data: dict | None = None) -> dict:
    data = data or task.data
    name = f"sd-{task.name}-{data.get('train_size', 'all')}-{method}".replace("_", "-")
    return {"name": name, "model": task.model, "data": data, "seeds": list(seeds), "stages": stages_for(method, task)}


def _recipe(method: str, task: Task, seeds, data: dict | None = None):
    raw = _recipe_dict(method, task, seeds, data)
    return parse_recipe(raw, raw["name"])


def _share_teacher(source_run: Path, target_run: Path, seed: int) -> None:
    """Hard-link a finished further_pretrain stage of ``source_run`` into ``target_run`` (same settings)."""
    src = source_run / f"seed-{seed}" / "01-further_pretrain"
    dst = target_run / f"seed-{seed}" / "01-further_pretrain"
    if (src / "done.json").exists() and not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst, copy_function=os.link)


def _final_metric(run, seed: int, metric: str) -> float:
    stages = run.results["seeds"][str(seed)]
    last = list(stages)[-1]
    return float(stages[last]["test"][metric])


def _run_methods(
    task: Task, methods, seeds, runs: Path, data: dict | None = None, out: dict | None = None, on_method=lambda: None
) -> dict:
    """Fill ``out`` with {method: {"per_seed", "mean", "std", "seconds", "run"}} for one task and data setting.

    ``on_method`` is called after each method, so partial results are on disk while a profile runs.
    """
    out = {} if out is None else out
    teacher_run = None
    for method in methods:
        recipe = _recipe(method, task, seeds, data)
        run_dir = run_dir_for(recipe, runs)
        if teacher_run is not None and _shares_teacher(method, recipe.calls[0].name):
            for seed in seeds:
                _share_teacher(teacher_run, run_dir, seed)
        log.info("repro selfdistill: %s / %s (%s)", task.name, method, run_dir.name)
        t0 = time.time()
        run = run_recipe(recipe, runs)
        if method == "further_pretrain":
            teacher_run = run.path
        scores = [_final_metric(run, s, task.metric) for s in seeds]
        out[method] = {
            "per_seed": scores,
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores)),
            "seconds": time.time() - t0,
            "run": str(run.path),
        }
        on_method()
    return out


def _ordered(methods) -> list[str]:
    """further_pretrain first, so its teacher can be shared with the self-distillation recipes; the rest
    in the profile's order."""
    return sorted(methods, key=lambda m: m != "further_pretrain")


def _available(task: Task) -> str | None:
    """Why a task cannot run here (a zoo model's or a zoo dataset's package is missing), or None."""
    wanted = {task.data["name"]} | ({task.source.data["name"]} if task.source else set())
    for data in list_datasets():
        if data.name in wanted and not data.available():
            return f"dataset '{data.name}' needs {data.package or 'its Debian package'}"
    info = None if task.source else model_zoo.get_info(task.model)
    if info is not None and not info.available():  # else a local folder, a hub id or one tailor pre-trains
        return f"model '{task.model}' needs the package '{info.package}'"
    return None


def paired_claims(results: dict) -> dict:
    """Per task, paired by seed (``tailor.report.stats``): every method against plain fine-tuning (the
    paper's baseline), SD against FPT, the full SD against each ablation (Table 3) and a second round
    against one (Fig. 4)."""
    out = {}
    for task, entry in results["tasks"].items():
        res = entry.get("methods", {})
        claims = [(m, "finetune") for m in res if m != "finetune"] + [("self_distill", "further_pretrain")]
        claims += [("self_distill", m) for m in TABLE3] + [("sd_rounds2", "self_distill")]
        out[task] = {
            f"{m} vs {b}": paired(res[m]["per_seed"], res[b]["per_seed"]).as_dict()
            for m, b in claims
            if m in res and b in res
        }
    return out


def table(results: dict) -> str:
    tasks = [t for t in results["tasks"] if "methods" in results["tasks"][t]]
    methods = results["methods"]
    header = ["method", *(f"{t} ({results['tasks'][t]['metric']}, %)" for t in tasks)]
    rows = []
    for m in methods:
        cells = []
        for t in tasks:
            r = results["tasks"][t]["methods"].get(m)
            cells.append(f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}" if r else "–")
        rows.append([m, *cells])
    text = markdown_table(header, rows)
    claims = [[t, claim, *fmt_paired(p)] for t, per in paired_claims(results).items() for claim, p in per.items()]
    if claims:
        text += "\nPaired by seed (points ×100; 'holds' = the whole interval above 0):\n\n"
        text += markdown_table(["task", "claim", *PAIRED_HEADER], claims)
    if results.get("sweep"):
        sizes = sorted(results["sweep"]["by_size"], key=int)
        text += f"\nTrain-size sweep ({results['sweep']['task']}, {results['sweep']['metric']}, %):\n\n"
        text += markdown_table(
            ["method", *sizes],
            [
                [
                    m,
                    *(
                        f"{100 * results['sweep']['by_size'][s][m]['mean']:.2f} ± "
                        f"{100 * results['sweep']['by_size'][s][m]['std']:.2f}"
                        for s in sizes
                    ),
                ]
                for m in CORE
            ],
        )
    skipped = {t: r["skipped"] for t, r in results["tasks"].items() if "skipped" in r}
    for t, why in skipped.items():
        text += f"\n{t}: skipped ({why})\n"
    return text


def plots(results: dict, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    written = []
    tasks = [t for t in results["tasks"] if "methods" in results["tasks"][t]]
    if tasks:
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
        for ax, t in zip(axes[0], tasks):
            res = results["tasks"][t]["methods"]
            names = [m for m in results["methods"] if m in res]
            ax.bar(
                range(len(names)),
                [100 * res[m]["mean"] for m in names],
                yerr=[100 * res[m]["std"] for m in names],
                capsize=4,
                color=[
                    "#999999" if m == "finetune" else "#4C72B0" if "self" in m or m.startswith("sd") else "#DD8452"
                    for m in names
                ],
            )
            lo = min(100 * (res[m]["mean"] - res[m]["std"]) for m in names)
            ax.set_ylim(max(0, lo - 5), None)
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
            ax.set_title(f"{t} ({results['tasks'][t]['metric']})", fontsize=9)
        finish(fig, list(axes[0]), out / "methods.png", grid="y")
        written.append("methods.png")
    if results.get("sweep"):
        sweep = results["sweep"]
        sizes = sorted(sweep["by_size"], key=int)
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for m in CORE:
            means = np.array([100 * sweep["by_size"][s][m]["mean"] for s in sizes])
            stds = np.array([100 * sweep["by_size"][s][m]["std"] for s in sizes])
            ax.plot([int(s) for s in sizes], means, marker="o", label=m)
            ax.fill_between([int(s) for s in sizes], means - stds, means + stds, alpha=0.2)
        ax.set_xscale("log")
        ax.set_title(f"train-size sweep: {sweep['task']}", fontsize=9)
        finish(
            fig,
            ax,
            out / "sweep.png",
            xlabel="labeled training examples (= unlabeled D_u)",
            ylabel=f"test {sweep['metric']} (%)",
            legend=8,
        )
        written.append("sweep.png")
    return written


def run(profile: str, out: Path, seeds: list[int] | None = None) -> dict:
    """Run a profile, write results.json, table.md and PNG plots to ``out``; return the results."""
    all_profiles = profiles()
    if profile not in all_profiles:
        raise ConfigError(f"unknown profile {profile!r}; valid: {', '.join(all_profiles)}")
    prof = all_profiles[profile]
    seeds = list(seeds or prof.seeds)
    out = Path(out).resolve()  # recipes name the pre-trained source model by path: one spelling per folder
    runs = out / "runs"
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    results: dict = {"profile": profile, "seeds": seeds, "methods": list(prof.methods), "tasks": {}}
    for task in prof.tasks:
        missing = _available(task)
        if task.source and not missing:
            task = dataclasses.replace(task, model=str(pretrained(task.source, out, runs)))
        if missing:
            log.warning("repro selfdistill: skipping %s (%s)", task.name, missing)
            results["tasks"][task.name] = {"skipped": missing, "metric": task.metric}
            continue
        entry = results["tasks"][task.name] = {
            "metric": task.metric,
            "model": task.model,
            "data": task.data,
            "methods": {},
        }
        _run_methods(
            task,
            _ordered(prof.methods),
            seeds,
            runs,
            out=entry["methods"],
            on_method=lambda: _write(results, out, start),
        )
        _write(results, out, start)
    if prof.sweep:
        task = prof.tasks[prof.sweep_task]
        by_size = {
            str(n): _run_methods(task, _ordered(CORE), seeds, runs, {**task.data, "train_size": n}) for n in prof.sweep
        }
        results["sweep"] = {"task": task.name, "metric": task.metric, "by_size": by_size}
    _write(results, out, start)
    print(table(results))
    return results


def _write(results: dict, out: Path, start: float) -> None:
    results["wall_seconds"] = time.time() - start
    results["environment"] = environment()
    results["paired"] = paired_claims(results)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    atomic_write_text(out / "table.md", table(results))
    results["plots"] = plots(results, out)
