"""`tailor repro tickets`: do robust tickets transfer better than natural ones at our scale?

A CIFAR-style ResNet (or a profile's ``model``, e.g. effnet-lite0) is pretrained on a source task
(Fashion-MNIST classes 0-4) naturally and with PGD adversarial training (one epsilon in the quick
profile, a sweep in the full one). From each
pretrained model, tickets are drawn by OMP, A-IMP (IMP with PGD training between rounds; natural IMP
for the natural model) and LMP (per downstream task) at each sparsity, and transferred to three
downstream tasks by full fine-tuning (mask fixed) and by linear evaluation. One recipe per
pretraining branches with ``source:`` so task data and the pretrained model are shared by all its
stages; every number comes from ``tailor.pipeline.run_recipe``.

The ``quick-paper-recipe`` profile is ``quick`` with the papers' recipes switched on: A-IMP at 20 %
of the survivors per round (IMP's rate), LMP ranking |score| per layer (edge-popup), and the
paper's transfer recipe (SGD, momentum 0.9, weight decay 1e-4, lr x0.1 at 1/3 and 2/3 of the
epochs, as at epochs 50 and 100 of 150).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...config import ConfigError
from ...files import atomic_write_text
from ...pipeline import run_recipe
from ...recipe import parse_recipe
from ...report.plots import finish
from ...report.stats import PAIRED_HEADER, fmt_paired, paired_by_key
from ...report.tables import markdown_table

SOURCE = {"name": "fashion-mnist", "classes": [0, 1, 2, 3, 4]}
TASKS = {
    "mnist-5k": {"name": "mnist-5k"},
    "digits": {"name": "digits"},
    "fashion-5-9": {"name": "fashion-mnist", "classes": [5, 6, 7, 8, 9]},
}
SPARSITIES = (0.5, 0.7, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Profile:
    seeds: tuple[int, ...]
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    source_train: int
    task_train: int
    test_size: int
    pretrain_epochs: float
    round_epochs: float  # A-IMP training per round
    lmp_epochs: float
    transfer_epochs: float
    eps: tuple[str, ...]  # robust pretraining epsilons (pixel units)
    image_size: int = 28
    task_batch: int = 64
    finetune_lr: float = 2e-3
    linear_lr: float = 1e-2
    pgd_steps: int = 3
    schemes: tuple[str, ...] = ("omp", "aimp", "lmp")
    protocols: tuple[str, ...] = ("finetune", "linear")
    sparsities: tuple[float, ...] = SPARSITIES
    aimp_rate: float | None = None  # fraction of survivors pruned per round; None: one round per sparsity level
    lmp_ranking: dict = field(default_factory=dict)  # e.g. EDGE_POPUP; {}: global signed ranking
    transfer_recipe: dict = field(default_factory=dict)  # overrides of the transfer stages, e.g. PAPER_TRANSFER
    patterns: dict = field(default_factory=dict)  # OMP tickets beside unstructured: "channel" / "2:4" -> sparsities
    train: dict = field(
        default_factory=lambda: {
            "batch_size": 64,
            "weight_decay": 0.0,
            "log_every": 50,
            "save_every": 100000,
            "eval_batch_size": 256,
        }
    )
    source: dict = field(default_factory=lambda: SOURCE)  # the pretraining task
    tasks: dict = field(default_factory=lambda: TASKS)  # downstream tasks
    model: str | None = None  # an image classifier to start from (zoo or hub); None: a fresh CIFAR ResNet (widths)


EDGE_POPUP = {"score_rank": "abs", "scope": "layerwise"}
# Fu et al. Sec. III (after Salman et al.): SGD, momentum 0.9, weight decay 1e-4, lr x0.1 at epochs 50 and 100 of
# 150; the milestones are placed at the same fractions of the profile's transfer epochs (see plan()).
PAPER_TRANSFER = {
    "optimizer": "sgd",
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "scheduler": "multistep",
    "gamma": 0.1,
    "warmup_ratio": 0.0,
}


def paper_milestones(epochs: float) -> list[float]:
    """The paper's 50/150 and 100/150 of the transfer's epochs."""
    return [epochs / 3, 2 * epochs / 3]


PROFILES = {
    # quick: sized for a shared 2-core CPU (16 px, 256 downstream examples, 24 transfer steps)
    "quick": Profile(
        seeds=(0, 1, 2),
        widths=(8, 16, 32),
        depths=(1, 1, 1),
        source_train=2000,
        task_train=256,
        test_size=300,
        pretrain_epochs=4,
        round_epochs=1,
        lmp_epochs=3,
        transfer_epochs=3,
        eps=("4/255",),
        image_size=16,
        task_batch=32,
        finetune_lr=5e-3,
        linear_lr=5e-2,
    ),
    "full": Profile(
        seeds=(0, 1, 2),
        widths=(16, 32, 64),
        depths=(2, 2, 2),
        source_train=20000,
        task_train=1200,
        test_size=2000,
        pretrain_epochs=10,
        round_epochs=2,
        lmp_epochs=5,
        transfer_epochs=10,
        eps=("1/255", "2/255", "4/255", "8/255"),
        pgd_steps=5,
    ),
}
# ≤ 60 min on 2 cores with bf16 (tailor.plan's CPU estimate; sizing in docs/reproductions/tickets.md): OMP tickets
# (the paper's Fig. 1) at the paper's two reported sparsities (0.7, 0.99) and between, channel and 2:4 tickets beside
# the unstructured ones, natural vs one robust epsilon, 5 seeds; 28 px, 1,200 examples per downstream task (digits
# has 1,294), 5 transfer epochs (188 AdamW steps at the full profile's rates, untuned); effnet-lite0 is
# `standard-effnet` below
PROFILES["standard"] = Profile(
    seeds=(0, 1, 2, 3, 4),
    widths=(16, 32, 64),
    depths=(1, 1, 1),
    source_train=5000,
    task_train=1200,
    test_size=500,
    pretrain_epochs=5,
    round_epochs=1,
    lmp_epochs=3,
    transfer_epochs=5,
    eps=("4/255",),
    image_size=28,
    task_batch=32,
    schemes=("omp",),
    sparsities=(0.5, 0.7, 0.9, 0.99),
    patterns={"channel": (0.5, 0.7), "2:4": (0.5,)},
)
# the standard profile's tickets drawn from the zoo's ImageNet EfficientNet-Lite0 (4.7 M) instead of the CIFAR
# ResNet, at 32 px (its five stride-2 stages leave 1x1): natural vs PGD-3 fine-tuning on the source task, then OMP
# tickets (unstructured 0.5 and 0.7, channel and 2:4 at 0.5; depthwise convolutions have fan-in 1, so 2:4 leaves
# them dense). Fewer cells than the ResNet's: an EfficientNet stage loads and steps slower on the CPU. Not run yet
# (docs/reproductions/tickets.md).
PROFILES["standard-effnet"] = replace(
    PROFILES["standard"],
    model="effnet-lite0",
    image_size=32,
    sparsities=(0.5, 0.7),
    patterns={"channel": (0.5,), "2:4": (0.5,)},
)
# SGD needs a larger step than AdamW; the paper gives no initial lr, these are not tuned
PROFILES["quick-paper-recipe"] = replace(
    PROFILES["quick"],
    aimp_rate=0.2,
    lmp_ranking=EDGE_POPUP,
    transfer_recipe=PAPER_TRANSFER,
    finetune_lr=5e-2,
    linear_lr=1e-1,
)


# The paper's transfer recipe (Sec. III-A, fine-tuning settings, after Salman et al.: SGD, batch 64, momentum 0.9,
# weight decay 1e-4, 150 epochs, lr ×0.1 at epochs 50 and 100, i.e. at 1/3 and 2/3 as `paper_milestones` places
# them; the initial lr is not given: 0.01, ours), with A-IMP at 20 % a round and edge-popup's LMP ranking, which
# our source does not state (the translation stops after p. 1; 20 % is Frankle & Carbin's IMP rate; LMP "follows
# [17]": top-k_t of the scores with a straight-through gradient, |score| per layer as edge-popup's code), on a
# ResNet-18 topology (widths 64-512, two blocks per stage) at CIFAR scale. Deviation: the source task is
# CIFAR-100, not ImageNet, because tailor's tickets stages are tested on its CIFAR ResNet and EfficientNet,
# not on an ImageNet ResNet checkpoint, and robust ImageNet pretraining per ε is days of GPU time; the ε grid
# and PGD settings are not in our source (ℓ∞ 1, 2, 4, 8 /255, PGD-10 here). Downstream: CIFAR-10 (hub ids
# unverified offline).
PROFILES["paper"] = Profile(
    seeds=(0, 1, 2),
    widths=(64, 128, 256, 512),
    depths=(2, 2, 2, 2),
    source_train=50_000,
    task_train=50_000,
    test_size=10_000,
    pretrain_epochs=100,
    round_epochs=10,
    lmp_epochs=10,
    transfer_epochs=150,
    eps=("1/255", "2/255", "4/255", "8/255"),
    image_size=32,
    task_batch=64,
    finetune_lr=0.01,
    linear_lr=0.01,
    pgd_steps=10,
    source={"name": "uoft-cs/cifar100", "image_column": "img", "label_column": "fine_label"},
    tasks={"cifar10": {"name": "uoft-cs/cifar10", "image_column": "img"}},
    aimp_rate=0.2,
    lmp_ranking=EDGE_POPUP,
    transfer_recipe=PAPER_TRANSFER,
)


def planned_runs(profile: str) -> list:
    """The recipe of each pretraining ``run(profile)`` makes, for ``tailor repro tickets --plan``; the base
    model (a fresh CIFAR ResNet that ``run`` writes) is named by its future folder, nothing is built."""
    from ...plan import PlannedRun

    p = PROFILES[profile]
    pretrainings, eval_attack = _pretrainings(p)
    flops = forward_flops(p)
    return [
        PlannedRun(
            {
                "name": f"tickets-{profile}-{name.replace('/', '_')}",
                "model": p.model or "<out>/base-model",
                "data": _source_data(p),
                "seeds": list(p.seeds),
                "stages": plan(p, attack, eval_attack)[0],
            },
            p.source_train,
            flops,
            name,
        )
        for name, attack in pretrainings.items()
    ]


def _source_data(p: Profile) -> dict:
    return {**p.source, "train_size": p.source_train, "test_size": p.test_size, "image_size": p.image_size}


def _pretrainings(p: Profile) -> tuple[dict, dict]:
    """{name: the source training's attack (None: natural)}, and the attack every pretrained model is
    evaluated with (the first robust epsilon, PGD-10)."""
    pretrainings = {"natural": None} | {
        f"robust-{e}": {"kind": "pgd", "norm": "linf", "eps": e, "steps": p.pgd_steps} for e in p.eps
    }
    return pretrainings, {"kind": "pgd", "norm": "linf", "eps": p.eps[0], "steps": 10}


def forward_flops(p: Profile) -> float:
    """FLOPs of one forward over one image, for --plan: EfficientNet-Lite0's 407 M multiply-adds at 224 px
    (its model card) scaled by area; else the CIFAR ResNet's two 3x3 convs per block, the resolution
    halving at each stage; 2 FLOPs per multiply-add."""
    if p.model == "effnet-lite0":
        return 2 * 407e6 * (p.image_size / 224) ** 2
    return sum(2 * 9 * w * w * 2 * d * (p.image_size / 2**i) ** 2 for i, (w, d) in enumerate(zip(p.widths, p.depths)))


def base_model(folder: Path, p: Profile) -> Path:
    """A freshly initialised resnet_cifar (5 classes, mean/std 0.5) saved as the recipes' model."""
    import torch
    from transformers import ViTImageProcessor

    from ...zoo.architectures.resnet import ResNetCifarConfig, ResNetCifarForImageClassification

    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        cfg = ResNetCifarConfig(stem_channels=p.widths[0], widths=list(p.widths), depths=list(p.depths), num_labels=5)
        ResNetCifarForImageClassification(cfg).save_pretrained(folder)
        ViTImageProcessor(
            size={"height": p.image_size, "width": p.image_size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
        ).save_pretrained(folder)
    return folder


def plan(p: Profile, attack: dict | None, eval_attack: dict) -> tuple[list[dict], dict[int, dict]]:
    """Stages of one pretraining's recipe, and what each transfer stage measures (by stage index)."""
    t = p.train
    task_data = {
        k: {**v, "train_size": p.task_train, "test_size": p.test_size, "image_size": p.image_size}
        for k, v in p.tasks.items()
    }
    source = _source_data(p)
    tt = {**t, "batch_size": p.task_batch}
    recipe = {
        **p.transfer_recipe,
        **(
            {"milestones": paper_milestones(p.transfer_epochs)}
            if p.transfer_recipe.get("scheduler") == "multistep"
            else {}
        ),
    }
    stages: list[dict] = [
        {
            "robust_pretrain": {
                **t,
                "epochs": p.pretrain_epochs,
                "lr": 2e-3,
                "attack": attack,
                "eval_attack": eval_attack,
            }
        }
    ]
    labels: dict[int, dict] = {}

    def sid(i: int, name: str) -> str:
        return f"{i + 1:02d}-{name}"

    def transfers(source: str, scheme: str, sparsity: float, tasks) -> None:
        for task in tasks:
            for protocol in p.protocols:
                lr = p.finetune_lr if protocol == "finetune" else p.linear_lr
                labels[len(stages)] = {"scheme": scheme, "sparsity": sparsity, "task": task, "protocol": protocol}
                stages.append(
                    {
                        "transfer": {
                            **tt,
                            **recipe,
                            "epochs": p.transfer_epochs,
                            "lr": lr,
                            "protocol": protocol,
                            "data": task_data[task],
                            "source": source,
                            **({"dense": True} if scheme == "dense" else {}),
                        }
                    }
                )

    pretrained = sid(0, "robust_pretrain")
    transfers(pretrained, "dense", 0.0, task_data)
    previous_aimp = pretrained
    for s in p.sparsities:
        if "omp" in p.schemes:
            stages.append({"draw_ticket": {**t, "scheme": "omp", "sparsity": s, "source": pretrained}})
            transfers(sid(len(stages) - 1, "draw_ticket"), "omp", s, task_data)
        for pattern, levels in p.patterns.items():
            if s in levels:
                spec = {"pattern": "nm", "n": 2, "m": 4} if pattern == "2:4" else {"pattern": pattern}
                stages.append({"draw_ticket": {**t, "scheme": "omp", "sparsity": s, **spec, "source": pretrained}})
                transfers(sid(len(stages) - 1, "draw_ticket"), f"omp/{pattern}", s, task_data)
        if "aimp" in p.schemes:  # IMP rounds up to each sparsity level, continuing from the previous ticket
            rounds = {"rate": p.aimp_rate} if p.aimp_rate else {"rounds": 1}
            stages.append(
                {
                    "draw_ticket": {
                        **t,
                        "scheme": "aimp",
                        "sparsity": s,
                        **rounds,
                        "lr": 2e-3,
                        "epochs": p.round_epochs,
                        "attack": attack,
                        "source": previous_aimp,
                        "data": source,
                    }
                }
            )
            previous_aimp = sid(len(stages) - 1, "draw_ticket")
            transfers(previous_aimp, "aimp", s, task_data)
        if "lmp" in p.schemes:
            for task in task_data:
                stages.append(
                    {
                        "draw_ticket": {
                            **tt,
                            **p.lmp_ranking,
                            "scheme": "lmp",
                            "sparsity": s,
                            "epochs": p.lmp_epochs,
                            "lr": 2e-2,
                            "head_lr": 1e-2,
                            "data": task_data[task],
                            "source": pretrained,
                        }
                    }
                )
                transfers(sid(len(stages) - 1, "draw_ticket"), "lmp", s, [task])
    return stages, labels


def run(profile: str, out: Path, seeds: list[int] | None = None) -> dict:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile '{profile}' (valid: {', '.join(PROFILES)})")
    p = PROFILES[profile]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = p.model or base_model(out / "base-model", p)
    source = _source_data(p)
    pretrainings, eval_attack = _pretrainings(p)
    recipes = {}
    for name, attack in pretrainings.items():
        stages, labels = plan(p, attack, eval_attack)
        recipes[name] = (
            parse_recipe(
                {
                    "name": f"tickets-{profile}-{name.replace('/', '_')}",
                    "model": str(base),
                    "data": source,
                    "seeds": list(seeds or p.seeds),
                    "stages": stages,
                }
            ),
            labels,
        )
    rows, runs = [], {}
    for seed in seeds or p.seeds:  # seed outermost: after each seed the table covers every pretraining
        for name, (recipe, labels) in recipes.items():
            result = run_recipe(recipe, out / "runs", seeds=[seed])
            runs[name] = str(result.path)
            rows += _rows(result.results["seeds"][str(seed)], labels, name, seed)
        summary = {"profile": profile, "runs": runs, "rows": rows, "paired": paired_claims(rows, list(pretrainings))}
        atomic_write_text(out / "results.json", json.dumps(summary, indent=2))
        atomic_write_text(out / "table.md", table(rows, list(pretrainings)))
        plot(rows, list(pretrainings), out / "accuracy_vs_sparsity.png")
    return summary


def _scheme_order(scheme: str) -> tuple[int, str]:
    """Tables list dense, OMP (unstructured, then its other patterns), A-IMP, LMP."""
    return ["dense", "omp", "aimp", "lmp"].index(scheme.split("/")[0]), scheme


def _rows(per_stage: dict, labels: dict[int, dict], pretrain: str, seed: int) -> list[dict]:
    ids = list(per_stage)
    source = per_stage[ids[0]]["test"]
    return [
        {
            "pretrain": pretrain,
            "seed": seed,
            **label,
            "accuracy": per_stage[ids[i]]["test"]["accuracy"],
            "source_accuracy": source["accuracy"],
            "source_robust_accuracy": source.get("robust_accuracy"),
        }
        for i, label in labels.items()
    ]


def _stats(rows: list[dict], key: str = "accuracy") -> tuple[float, float, int]:
    v = np.array([r[key] for r in rows], dtype=float)
    return float(v.mean()), float(v.std()), len(v)


def _group(rows: list[dict], **match) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def table(rows: list[dict], pretrainings: list[str]) -> str:
    """Mean ± std test accuracy (%) over seeds; the gap columns are robust minus natural."""
    robust = [p for p in pretrainings if p != "natural"]
    lines = [
        "## Source task (Fashion-MNIST classes 0-4)",
        "",
        "| pretraining | clean accuracy | robust accuracy (PGD-10 at the first robust epsilon) |",
        "|---|---|---|",
    ]
    for p in pretrainings:
        g = {r["seed"]: r for r in _group(rows, pretrain=p)}.values()
        ra = [r for r in g if r["source_robust_accuracy"] is not None]
        rob = "–" if not ra else "{:.2f} ± {:.2f}".format(*(100 * x for x in _stats(ra, "source_robust_accuracy")[:2]))
        lines.append(
            f"| {p} | {100 * _stats(list(g), 'source_accuracy')[0]:.2f} ± "
            f"{100 * _stats(list(g), 'source_accuracy')[1]:.2f} | {rob} |"
        )
    header = ["scheme", "protocol", "task", "sparsity", *pretrainings, *(f"{p} − natural" for p in robust)]
    lines += [
        "",
        "## Downstream test accuracy (%), mean ± std over seeds",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    keys = sorted(
        {(r["scheme"], r["protocol"], r["task"], r["sparsity"]) for r in rows},
        key=lambda k: (*_scheme_order(k[0]), k[1], k[2], k[3]),
    )
    for scheme, protocol, task, s in keys:
        cells, means = [], {}
        for p in pretrainings:
            g = _group(rows, pretrain=p, scheme=scheme, protocol=protocol, task=task, sparsity=s)
            m, sd, n = _stats(g)
            means[p] = m
            cells.append(f"{100 * m:.2f} ± {100 * sd:.2f}")
        gaps = [f"{100 * (means[p] - means['natural']):+.2f}" for p in robust]
        lines.append(f"| {scheme} | {protocol} | {task} | {s} | " + " | ".join(cells + gaps) + " |")
    n_seeds = len({r["seed"] for r in rows})
    wins = [(means_r > means_n) for means_r, means_n in _paired_means(rows, robust)]
    lines += [
        "",
        f"Seeds: {n_seeds}. Robust ticket beats natural ticket (mean over seeds) in "
        f"{sum(wins)} of {len(wins)} (scheme, protocol, task, sparsity>0) cells.",
    ]
    claims = paired_claims(rows, pretrainings)
    lines += [
        "",
        "## Paired by seed: robust − natural, accuracy averaged over the tasks (points)",
        "",
        markdown_table(
            ["scheme", "protocol", "sparsity", "pretraining", *PAIRED_HEADER],
            [[c["scheme"], c["protocol"], c["sparsity"], c["pretrain"], *fmt_paired(c)] for c in claims],
        ).rstrip(),
    ]
    return "\n".join(overview(rows, pretrainings) + [""] + lines) + "\n"


def task_mean_by_seed(group: list[dict]) -> dict[int, float]:
    """Seed -> test accuracy averaged over the downstream tasks of one arm's rows."""
    return {
        seed: float(np.mean([r["accuracy"] for r in group if r["seed"] == seed]))
        for seed in sorted({r["seed"] for r in group})
    }


def paired_claims(rows: list[dict], pretrainings: list[str]) -> list[dict]:
    """Each robust pretraining against the natural one per (scheme, protocol, sparsity): the per-seed
    accuracy averaged over the downstream tasks, paired by seed (``tailor.report.stats``)."""
    keys = sorted(
        {(r["scheme"], r["protocol"], r["sparsity"]) for r in rows},
        key=lambda k: (*_scheme_order(k[0]), k[1], k[2]),
    )
    out = []
    for scheme, protocol, s in keys:
        natural = task_mean_by_seed(_group(rows, pretrain="natural", scheme=scheme, protocol=protocol, sparsity=s))
        for p in pretrainings:
            if p != "natural":
                robust = task_mean_by_seed(_group(rows, pretrain=p, scheme=scheme, protocol=protocol, sparsity=s))
                out.append(
                    {
                        "scheme": scheme,
                        "protocol": protocol,
                        "sparsity": s,
                        "pretrain": p,
                        **paired_by_key(robust, natural).as_dict(),
                    }
                )
    return out


def overview(rows: list[dict], pretrainings: list[str]) -> list[str]:
    """Test accuracy (%) averaged over the downstream tasks (then mean ± std over seeds), per
    scheme/protocol/sparsity."""
    robust = [p for p in pretrainings if p != "natural"]
    header = ["scheme", "protocol", "sparsity", *pretrainings, *(f"{p} − natural" for p in robust)]
    lines = [
        "## Overview: downstream accuracy (%) averaged over the tasks, mean ± std over seeds",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    keys = sorted(
        {(r["scheme"], r["protocol"], r["sparsity"]) for r in rows},
        key=lambda k: (*_scheme_order(k[0]), k[1], k[2]),
    )
    for scheme, protocol, s in keys:
        means, cells = {}, []
        for p in pretrainings:
            group = _group(rows, pretrain=p, scheme=scheme, protocol=protocol, sparsity=s)
            per_seed = [
                np.mean([r["accuracy"] for r in group if r["seed"] == seed])
                for seed in sorted({r["seed"] for r in group})
            ]
            means[p] = float(np.mean(per_seed))
            cells.append(f"{100 * means[p]:.2f} ± {100 * float(np.std(per_seed)):.2f}")
        gaps = [f"{100 * (means[p] - means['natural']):+.2f}" for p in robust]
        lines.append(f"| {scheme} | {protocol} | {s} | " + " | ".join(cells + gaps) + " |")
    return lines


def _paired_means(rows: list[dict], robust: list[str]):
    keys = {(r["scheme"], r["protocol"], r["task"], r["sparsity"]) for r in rows if r["scheme"] != "dense"}
    for scheme, protocol, task, s in sorted(keys):
        nat = _stats(_group(rows, pretrain="natural", scheme=scheme, protocol=protocol, task=task, sparsity=s))[0]
        for p in robust:
            yield _stats(_group(rows, pretrain=p, scheme=scheme, protocol=protocol, task=task, sparsity=s))[0], nat


def plot(rows: list[dict], pretrainings: list[str], path: Path) -> Path:
    """Accuracy vs sparsity, one panel per (task, protocol); a line per (scheme, pretraining), dense as a
    dashed level."""
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    protocols = sorted({r["protocol"] for r in rows})
    fig, axes = plt.subplots(
        len(protocols), len(tasks), figsize=(4.2 * len(tasks), 3.4 * len(protocols)), squeeze=False
    )
    colors = {"omp": "#4C72B0", "aimp": "#DD8452", "lmp": "#55A868", "omp/channel": "#8172B3", "omp/2:4": "#937860"}
    for (i, protocol), (j, task) in ((a, b) for a in enumerate(protocols) for b in enumerate(tasks)):
        ax = axes[i][j]
        for p in pretrainings:
            style = "-" if p == "natural" else "--"
            dense = _group(rows, pretrain=p, scheme="dense", protocol=protocol, task=task)
            if dense:
                ax.axhline(100 * _stats(dense)[0], color="grey", ls=style, lw=0.8)
            for scheme, color in colors.items():
                pts = sorted({r["sparsity"] for r in _group(rows, scheme=scheme, task=task)})
                if not pts:
                    continue
                stats = [
                    _stats(_group(rows, pretrain=p, scheme=scheme, protocol=protocol, task=task, sparsity=s))
                    for s in pts
                ]
                ax.errorbar(
                    range(len(pts)),
                    [100 * m for m, _, _ in stats],
                    yerr=[100 * sd for _, sd, _ in stats],
                    color=color,
                    ls=style,
                    marker="o",
                    ms=3,
                    capsize=2,
                    label=f"{scheme} ({p})",
                )
                ax.set_xticks(range(len(pts)), [str(s) for s in pts])
        ax.set_title(f"{task} — {protocol}", fontsize=9)
    return finish(
        fig, [ax for row in axes for ax in row], path, xlabel="sparsity", ylabel="test accuracy (%)", legend=6
    )
