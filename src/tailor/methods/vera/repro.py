"""`tailor repro vera`: full fine-tuning vs LoRA (r=8) vs VeRA (r=256, r=1024) at our scale.

Settings (paper -> here): RoBERTa on GLUE -> MiniLM-L6 on three zoo text tasks; ViT with 10 images
per class -> DINOv2-S on Fashion-MNIST with 10 images per class. The full profile adds the paper's
ablations (Table 6: d_init, only-b / only-d, A/B init; Table 7: shared vs unique projections; Fig. 2:
rank) on two text tasks, and the decoder comparison (SmolLM2-135M, VeRA vs LoRA, held-out
perplexity). Every run is a recipe through the pipeline, so an interrupted repro resumes where it
stopped. The quick and full profiles' learning rates are ours (our models are smaller and our runs far
shorter than the paper's): one setting per method, the same head learning rate for all methods. The
paper profile uses the paper's Tables 8 and 11 (docs/reproductions/paper_settings.md).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...artifacts import Artifact
from ...config import ConfigError
from ...files import atomic_write_text
from ...pipeline import environment, run_dir_for, run_recipe
from ...recipe import parse_recipe
from ...report import fmt_mean_std, markdown_table
from ...report.plots import finish
from ...report.stats import PAIRED_HEADER, fmt_paired, paired_by_key

TEXT_TASKS = ("tweets2016", "reuters-r8", "disaster-genre")
HEAD_LR = 5e-3
# Every "full" arm keeps the encoder's pooler ("pooler": "keep", not finetune's default reinit): the adapter
# arms start from that pretrained pooler and train it as part of the head.
METHODS: dict[str, tuple[str, dict]] = {
    "full": ("finetune", {"lr": 1e-4, "head_lr": HEAD_LR, "pooler": "keep"}),
    "lora-r8": ("lora", {"r": 8, "alpha": 16, "lr": 1e-3, "head_lr": HEAD_LR}),
    "vera-r256": ("vera", {"r": 256, "lr": 2e-2, "head_lr": HEAD_LR}),
    "vera-r1024": ("vera", {"r": 1024, "lr": 2e-2, "head_lr": HEAD_LR}),
}
_VERA = METHODS["vera-r1024"][1]
ABLATIONS: dict[str, tuple[str, dict]] = {
    "vera-r1024 d_init=1.0": ("vera", {**_VERA, "d_initial": 1.0}),
    "vera-r1024 d_init=1e-7": ("vera", {**_VERA, "d_initial": 1e-7}),
    "vera-r1024 only_b": ("vera", {**_VERA, "vectors": "only_b"}),
    "vera-r1024 only_d": ("vera", {**_VERA, "vectors": "only_d"}),
    "vera-r1024 kaiming_normal": ("vera", {**_VERA, "projection_init": "kaiming_normal"}),
    "vera-r1024 uniform[0,0.1]": ("vera", {**_VERA, "projection_init": "uniform"}),
    "vera-r1024 unique A,B": ("vera", {**_VERA, "shared_projection": False}),
    **{f"vera-r{r}": ("vera", {**_VERA, "r": r}) for r in (1, 16, 64)},
    **{f"lora-r{r}": ("lora", {**METHODS["lora-r8"][1], "r": r}) for r in (1, 2)},
}
DECODER = {
    "lora-r8": ("lora", {"r": 8, "alpha": 16, "lr": 1e-3, "task": "causal_lm"}),
    "vera-r256": ("vera", {"r": 256, "lr": 1e-2, "task": "causal_lm"}),
}


@dataclass(frozen=True)
class Profile:
    text_data: dict
    text_train: dict
    image_data: dict | None  # None: no image setting
    image_train: dict
    ablation_tasks: tuple[str, ...] = ()
    decoder: dict | None = None
    decoder_train: dict = field(default_factory=dict)
    text_model: str = "minilm-l6"
    text_tasks: tuple[str, ...] = TEXT_TASKS
    task_data: dict = field(default_factory=dict)  # text task -> data settings beside text_data (hub name, columns)
    image_model: str = "dinov2-s"
    decoder_model: str = "smollm2-135m"
    methods: dict = field(default_factory=lambda: METHODS)  # label -> (stage, settings), for text and images
    image_methods: dict | None = None  # None: the same as `methods`
    task_methods: dict = field(default_factory=dict)  # text task -> its own `methods` (per-task rates)
    task_train: dict = field(default_factory=dict)  # text task -> settings beside text_train (epochs)
    seeds: tuple[int, ...] = (0, 1, 2)


# min_steps: None: every arm runs the profile's epochs (finetune's own default would add steps to one arm only)
_TRAIN = {
    "batch_size": 32,
    "warmup_ratio": 0.06,
    "min_steps": None,
    "log_every": 5,
    "save_every": 10_000,
    "eval_batch_size": 128,
}
PROFILES = {
    # sized for ~45 min on 2 idle CPU cores: 36 text runs of 24 steps, 12 image runs of 50 steps, 6 decoder runs of 16
    "quick": Profile(
        text_data={"train_size": 256, "validation_size": 64, "test_size": 256, "max_length": 48},
        text_train={**_TRAIN, "epochs": 3},
        image_data={
            "name": "fashion-mnist",
            "per_class": 10,
            "validation_size": 20,
            "test_size": 300,
            "image_size": 112,
        },
        image_train={**_TRAIN, "batch_size": 20, "epochs": 10},
        decoder={"name": "disaster-genre", "train_size": 128, "validation_size": 64, "test_size": 96, "max_length": 64},
        decoder_train={**_TRAIN, "batch_size": 8, "epochs": 1, "eval_batch_size": 16},
    ),
    "full": Profile(
        text_data={"train_size": 2000, "validation_size": 200, "test_size": 1000, "max_length": 64},
        text_train={**_TRAIN, "epochs": 5},
        image_data={
            "name": "fashion-mnist",
            "per_class": 10,
            "validation_size": 20,
            "test_size": 2000,
            "image_size": 224,
        },
        image_train={**_TRAIN, "batch_size": 20, "epochs": 10},
        ablation_tasks=("tweets2016", "disaster-genre"),
        decoder={
            "name": "disaster-genre",
            "train_size": 2000,
            "validation_size": 200,
            "test_size": 500,
            "max_length": 64,
        },
        decoder_train={**_TRAIN, "batch_size": 16, "epochs": 1},
    ),
}


# ≤ 60 min on 2 cores with bf16 (timed here; sizing in docs/reproductions/vera.md): text only, one task
# (tweets2016, the quick profile's least noisy), 5 seeds, VeRA against LoRA r=8 with Table 8's head rate (4e-3,
# shared by every arm) and its VeRA rate (1e-2, the pair of MRPC and QNLI), VeRA over three of Fig. 2's ranks;
# LoRA's rate and alpha are ours (Hu et al.'s 4e-4-5e-4 assume 60-80 epochs).
STANDARD_HEAD_LR = 4e-3
STANDARD_METHODS = {
    "lora-r8": ("lora", {"r": 8, "alpha": 16, "lr": 1e-3, "head_lr": STANDARD_HEAD_LR}),
    **{f"vera-r{r}": ("vera", {"r": r, "lr": 1e-2, "head_lr": STANDARD_HEAD_LR}) for r in (64, 256, 1024)},
}
PROFILES["standard"] = Profile(
    text_data={"train_size": 2000, "validation_size": 200, "test_size": 500, "max_length": 48},
    text_train={**_TRAIN, "epochs": 4},
    text_tasks=("tweets2016",),
    image_data=None,
    image_train={},
    methods=STANDARD_METHODS,
    seeds=(0, 1, 2, 3, 4),
)


def _paper_glue(head_lr: float, vera_lr: float, lora_lr: float) -> dict:
    """RoBERTa-base GLUE arms: VeRA r=1024 (d_init 0.1), LoRA r=8 with alpha 8 (Hu et al. 2022, Table 9,
    RoBERTa-base), full fine-tuning; one head rate for all arms of a task (VeRA's Table 8 head rate), so
    they differ only in the method."""
    return {
        "full": ("finetune", {"lr": 2e-5, "head_lr": head_lr, "pooler": "keep"}),
        "lora-r8": ("lora", {"r": 8, "alpha": 8, "lr": lora_lr, "head_lr": head_lr}),
        "vera-r1024": ("vera", {"r": 1024, "lr": vera_lr, "head_lr": head_lr}),
    }


# The paper's GLUE setting (Sec. 4.1, Table 8, p. 14): RoBERTa-base, query/value adapted, batch 64, max length
# 512, AdamW, warm-up 0.06, linear schedule (from Hu et al.), VeRA rank 1024, d_init 0.1, separate head and
# VeRA rates, 5 seeds. Our translation has no table bodies; Tables 8 and 11 were checked against a text copy
# of the English PDF (arXiv 2310.11454v2, App. A; docs/reproductions/paper_settings.md). Table 8 gives no
# weight decay (ours: the engine's 0.01). LoRA's rates and alpha are Hu et al.'s (2022) Table 9 for
# RoBERTa-base (lr 5e-4 SST-2, 4e-4 CoLA, alpha 8; checked against a text copy of arXiv 2106.09685; its batch
# 16/32 is not used, so that the arms share VeRA's 64); the full fine-tuning rate 2e-5 is ours (VeRA's Table 2
# copies that row from prior work). GLUE's single-sentence tasks only (tailor data has one text column); GLUE
# hides test labels, so its dev set is the test split. ViT (Sec. 4.4): ViT-B/16 from ImageNet-21k, 10 images
# per class of CIFAR-100, 10 epochs, VeRA r=256, LoRA r=8, AdamW, weight decay 0.01, linear schedule, the
# rates of Table 11 (p. 15, ViT-Base, CIFAR100); its batch, warm-up and LoRA alpha are not given (ours: 32,
# 0.06, 16).
PAPER = Profile(
    text_data={"max_length": 512, "validation_size": 0.1},
    text_train={**_TRAIN, "batch_size": 64, "log_every": 50},
    text_model="FacebookAI/roberta-base",
    text_tasks=("sst2", "cola"),
    task_data={
        t: {"name": "nyu-mll/glue", "subset": t, "text_column": "sentence", "test_split": "validation"}
        for t in ("sst2", "cola")
    },
    # VeRA Table 8, RoBERTa-base: SST-2 60 epochs, head lr 4e-3, VeRA lr 4e-3; CoLA 80 epochs, head 1e-2, VeRA 1e-2.
    # Sec. 4.1: "the best epoch of each run": scored every epoch (948 / 121 steps at batch 64 after the 10 %
    # validation split) on that split, not on GLUE dev as the paper does, which stays the untouched test set
    task_train={
        "sst2": {"epochs": 60, "eval_every": 948, "select": "best"},
        "cola": {"epochs": 80, "eval_every": 121, "select": "best"},
    },
    task_methods={"sst2": _paper_glue(4e-3, 4e-3, 5e-4), "cola": _paper_glue(1e-2, 1e-2, 4e-4)},
    image_data={
        "name": "uoft-cs/cifar100",
        "image_column": "img",
        "label_column": "fine_label",
        "per_class": 10,
        "validation_size": 0.1,
        "image_size": 224,
    },
    image_train={**_TRAIN, "batch_size": 32, "epochs": 10},
    image_model="google/vit-base-patch16-224-in21k",
    # VeRA Table 11, ViT-Base on CIFAR100: Full lr 4e-5 / head 4e-3, LoRA 4e-3 / 4e-3, VeRA 2e-2 / 4e-3
    image_methods={
        "full": ("finetune", {"lr": 4e-5, "head_lr": 4e-3, "pooler": "keep"}),
        "lora-r8": ("lora", {"r": 8, "alpha": 16, "lr": 4e-3, "head_lr": 4e-3}),
        "vera-r256": ("vera", {"r": 256, "lr": 2e-2, "head_lr": 4e-3}),
    },
    seeds=(0, 1, 2, 3, 4),
)
PROFILES["paper"] = PAPER
PARAMS = {"roberta-base": 125e6, "vit-base": 86e6, "smollm2": 134.5e6}  # by model name, for --plan; else 22.7M
PAPER_EXAMPLES = {"sst2": 67349, "cola": 8551, "cifar100": 1000}  # training examples, for --plan's estimate


def planned_runs(profile: str) -> list:
    """Every recipe ``run(profile)`` makes, for ``tailor repro vera --plan`` (nothing is loaded)."""
    from ...plan import PlannedRun

    p = PROFILES[profile]
    out = []
    for e in experiments(p):
        task = e.data.get("subset") or Path(e.data["name"]).name
        text = e.model != p.image_model
        tokens = p.text_data.get("max_length", 128) if text else (e.data.get("image_size", 224) // 16) ** 2 + 1
        params = next((n for key, n in PARAMS.items() if key in e.model), 22.7e6)
        classes = 100 if "cifar100" in e.data["name"] else 10  # per_class data: CIFAR-100, else Fashion-MNIST
        examples = e.data.get("train_size") or (e.data.get("per_class", 0) * classes) or PAPER_EXAMPLES.get(task, 0)
        out.append(PlannedRun({**e.recipe(), "seeds": list(p.seeds)}, examples, 2 * params * tokens, e.method))
    return out


@dataclass(frozen=True)
class Experiment:
    setting: str
    method: str
    model: str
    data: dict
    stage: str
    config: dict
    metric: str = "accuracy"

    def recipe(self) -> dict:
        name = f"vera-{self.setting}-{self.method}".replace(" ", "_").replace("[", "").replace("]", "").replace(",", "")
        name = name.replace("=", "").replace("/", "-")
        return {
            "name": name,
            "model": self.model,
            "data": self.data,
            "seeds": [0],
            "stages": [{self.stage: self.config}],
        }


def experiments(profile: Profile) -> list[Experiment]:
    out = []
    model = profile.text_model
    for task in profile.text_tasks:
        data = {"name": task, **profile.task_data.get(task, {}), **profile.text_data}
        methods = {
            **profile.task_methods.get(task, profile.methods),
            **(ABLATIONS if task in profile.ablation_tasks else {}),
        }
        train = {**profile.text_train, **profile.task_train.get(task, {})}
        out += [
            Experiment(f"{Path(model).name}/{task}", label, model, data, stage, {**train, **cfg})
            for label, (stage, cfg) in methods.items()
        ]
    if profile.image_data:
        image = profile.image_data
        shots = f"-{image['per_class']}shot" if image.get("per_class") else ""
        out += [
            Experiment(
                f"{Path(profile.image_model).name}/{Path(image['name']).name}{shots}",
                label,
                profile.image_model,
                image,
                stage,
                {**profile.image_train, **cfg},
            )
            for label, (stage, cfg) in (profile.image_methods or profile.methods).items()
        ]
    if profile.decoder:
        out += [
            Experiment(
                f"{Path(profile.decoder_model).name}/{profile.decoder['name']}-lm",
                label,
                profile.decoder_model,
                profile.decoder,
                stage,
                {**profile.decoder_train, **cfg},
                metric="perplexity",
            )
            for label, (stage, cfg) in DECODER.items()
        ]
    return out


def run(profile: str, out: Path, seeds: list[int] | None = None) -> dict:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r} (valid: {', '.join(PROFILES)})")
    seeds = seeds or list(PROFILES[profile].seeds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = experiments(PROFILES[profile])
    rows: dict[int, dict] = {}
    skipped: dict[int, dict] = {}
    start = time.time()
    # seeds outermost: if the run is cut short, every setting has the same number of finished seeds
    for k, seed in enumerate(seeds):
        for i, exp in enumerate(todo):
            if i in skipped:
                continue
            t0 = time.time()
            try:
                recipe = parse_recipe(exp.recipe(), f"repro {exp.setting} {exp.method}")
                run_recipe(recipe, out / "runs", [seed])
            except ConfigError as err:  # a zoo asset that is not installed here: say so, run the rest
                skipped[i] = {"setting": exp.setting, "method": exp.method, "reason": str(err).splitlines()[0]}
                print(f"{exp.setting} {exp.method}: skipped ({skipped[i]['reason']})", flush=True)
                continue
            rows[i] = _row(exp, run_recipe(recipe, out / "runs", seeds[: k + 1]))  # finished: only aggregates
            score = rows[i]["test"].get(exp.metric, {})
            print(
                f"[seed {seed}, {i + 1}/{len(todo)}] {exp.setting} {exp.method}: test {exp.metric} "
                f"{score.get('mean', float('nan')):.4f} over {k + 1} seed(s) ({time.time() - t0:.0f} s, "
                f"total {time.time() - start:.0f} s)",
                flush=True,
            )
            _write(out, profile, seeds, _ordered(rows), _ordered(skipped), time.time() - start)
    return _write(out, profile, seeds, _ordered(rows), _ordered(skipped), time.time() - start)


def collect(profile: str, out: Path, seeds: list[int] | None = None) -> dict:
    """Rebuild results.json and table.md from the seeds that finished, running nothing new
    (for a repro that was cut short, or whose settings ran in separate processes)."""
    out = Path(out)
    rows, skipped = [], []
    for exp in experiments(PROFILES[profile]):
        try:
            recipe = parse_recipe(exp.recipe(), f"repro {exp.setting} {exp.method}")
        except ConfigError as err:
            skipped.append({"setting": exp.setting, "method": exp.method, "reason": str(err).splitlines()[0]})
            continue
        run_dir = run_dir_for(recipe, out / "runs")
        done = [s for s in (seeds or [0, 1, 2]) if list(run_dir.glob(f"seed-{s}/*/done.json"))]
        if not done:
            skipped.append({"setting": exp.setting, "method": exp.method, "reason": "not run (no finished seed)"})
            continue
        rows.append(_row(exp, run_recipe(recipe, out / "runs", done)))
    return _write(out, profile, seeds or [0, 1, 2], rows, skipped, float("nan"))


def _ordered(by_index: dict[int, dict]) -> list[dict]:
    return [by_index[i] for i in sorted(by_index)]


def _row(exp: Experiment, result) -> dict:
    ((stage_id, stats),) = result.summary.items()
    pick = lambda prefix: {k[len(prefix) :]: v for k, v in stats.items() if k.startswith(prefix)}  # noqa: E731
    params, sizes = pick("params/"), pick("bytes/")
    if not params:  # full fine-tuning: every weight is trained and stored
        params, sizes = _full_model_size(result.path / "seed-0" / stage_id)
    per_seed = {
        seed: stages[stage_id]["test"][exp.metric]
        for seed, stages in result.results["seeds"].items()
        if exp.metric in stages.get(stage_id, {}).get("test", {})
    }
    return {
        "setting": exp.setting,
        "method": exp.method,
        "metric": exp.metric,
        "run": str(result.path),
        "test": pick("test/"),
        "validation": pick("validation/"),
        "per_seed": per_seed,
        "params": {k: v["mean"] for k, v in params.items()},
        "bytes": {k: v["mean"] for k, v in sizes.items()},
        "seconds": stats.get("seconds", {}).get("mean"),
        "n_seeds": stats.get("test/" + exp.metric, {}).get("n"),
    }


def _full_model_size(stage_dir: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    record = json.loads((stage_dir / "done.json").read_text())
    folder = Artifact.load(stage_dir / record["artifact"]).path
    numel = 0
    files = sorted(folder.glob("*.safetensors"))
    for f in files:
        with safe_open(f, framework="pt") as st:
            numel += sum(math.prod(st.get_slice(k).get_shape()) for k in st.keys())
    size = sum(f.stat().st_size for f in files)
    return {"adapter_params": {"mean": numel}}, {"adapter_file_bytes": {"mean": size}}


BASELINE = "lora-r8"  # the paper's comparison: VeRA against LoRA


def paired_claims(rows: list[dict], baseline: str = BASELINE) -> list[dict]:
    """Every method against ``baseline`` in the same setting, paired by seed (``tailor.report.stats``);
    a positive difference is better (higher accuracy, lower perplexity)."""
    base = {r["setting"]: r for r in rows if r["method"] == baseline}
    return [
        {
            "setting": r["setting"],
            "claim": f"{r['method']} vs {baseline}",
            "metric": r["metric"],
            **paired_by_key(
                r.get("per_seed", {}),
                base[r["setting"]].get("per_seed", {}),
                higher_is_better=r["metric"] != "perplexity",
            ).as_dict(),
        }
        for r in rows
        if r["method"] != baseline and r["setting"] in base
    ]


def _write(out: Path, profile: str, seeds: list[int], rows: list[dict], skipped: list[dict], seconds: float) -> dict:
    results = {
        "profile": profile,
        "seeds": seeds,
        "rows": rows,
        "skipped": skipped,
        "wall_seconds": seconds,
        "paired": paired_claims(rows),
        "environment": environment(),
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    atomic_write_text(out / "table.md", table(results))
    if rows:
        _plot(rows, out / "accuracy_vs_params.png")
    return results


def _human(nbytes: float | None) -> str:
    if nbytes is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def table(results: dict) -> str:
    """Markdown: one row per (setting, method), test metric mean ± std over seeds, params and bytes."""
    header = [
        "setting",
        "method",
        "trainable params (excl. head)",
        "adapter vectors",
        "file on disk",
        "test metric (mean ± std)",
        "test macro-F1",
        "seeds",
        "s/run",
    ]
    rows = []
    for r in results["rows"]:
        perplexity = r["metric"] == "perplexity"
        metric = (
            f"ppl {fmt_mean_std(r['test'].get('perplexity'), 1)}"
            if perplexity
            else f"acc {fmt_mean_std(r['test'].get('accuracy'), 100)}"
        )
        vectors, sizes = r["bytes"].get("vector_bytes"), r["bytes"]
        parts = [
            f"{label} {_human(sizes[key])}"
            for key, label in (("projection_bytes", "A,B"), ("head_bytes", "head"))
            if sizes.get(key)
        ]
        on_disk = _human(sizes.get("adapter_file_bytes")) + (f" ({', '.join(parts)})" if parts else "")
        rows.append(
            [
                r["setting"],
                r["method"],
                f"{r['params'].get('adapter_params', 0):,.0f}",
                _human(vectors) if vectors is not None else "(all weights)",
                on_disk,
                metric,
                "–" if perplexity else fmt_mean_std(r["test"].get("macro_f1"), 100),
                str(r["n_seeds"]),
                f"{r['seconds']:.0f}" if r["seconds"] else "–",
            ]
        )
    rows += [[s["setting"], s["method"], f"skipped: {s['reason']}", *[""] * 6] for s in results["skipped"]]
    text = markdown_table(header, rows)
    claims = [
        [c["setting"], c["claim"], *fmt_paired(c, 1 if c["metric"] == "perplexity" else 100)]
        for c in results.get("paired", [])
    ]
    if claims:
        text += (
            f"\nPaired by seed against {BASELINE} (accuracy points ×100, perplexity as lower-is-better; "
            "the paper claims parity, so 'inconclusive' with a narrow interval is what it predicts and "
            "'contradicted' means significantly worse):\n\n"
        )
        text += markdown_table(["setting", "claim", *PAIRED_HEADER], claims)
    return text


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    settings = sorted({r["setting"] for r in rows if r["metric"] == "accuracy"})
    if not settings:
        return
    fig, axes = plt.subplots(1, len(settings), figsize=(4 * len(settings), 3.4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        for r in (r for r in rows if r["setting"] == setting and r["test"].get("accuracy")):
            acc = r["test"]["accuracy"]
            ax.errorbar(
                max(r["params"].get("adapter_params", 1), 1),
                acc["mean"] * 100,
                yerr=acc["std"] * 100,
                fmt="o",
                capsize=3,
            )
            ax.annotate(r["method"], (max(r["params"].get("adapter_params", 1), 1), acc["mean"] * 100), fontsize=6)
        ax.set_xscale("log")
        ax.set_title(setting, fontsize=8)
    finish(fig, list(axes[0]), path, xlabel="trainable params (excl. head)", ylabel="test accuracy (%)")
