"""`tailor repro <method> --profile P --plan`: every run a profile makes, its settings and a rough cost,
without loading a model or data.

Each recipe is validated (`parse_recipe`: keys, types, stage graph), nothing more. The cost is an
estimate, written by hand because no library does it: optimisation steps per seed from each stage's
`steps`, or `epochs` × training examples / batch; training FLOPs as passes × forward FLOPs per example
× examples seen, where one training pass (forward + backward) counts 3 forwards; and GPU hours at an
ASSUMED sustained 1e14 FLOP/s (bf16 on an A100/H100-class GPU at roughly a third of its peak). It is
good to a factor of about two: attention's quadratic term, evaluation and data loading are ignored.

The CPU estimate (minutes, for the `standard` profiles) is for the machine those are sized for: 2 cores
of an AMD EPYC with AVX512-BF16 (no AMX), bf16. Per optimisation step it charges a fixed cost (the
optimizer update, per-step overhead) plus the step's FLOPs at an effective rate, per stage family
(`MODEL_STEP`: lines through idle bench timings on the AVX2 machine, `AVX2_FP32`, scaled by bench
engine's bf16-here over fp32-there ratio); per stage and seed it adds one forward over the validation
and test caps, or the whole test split (`PlannedRun.test_examples`) where there is none, at the test split's
size for validation too (and one validation per `eval_every`), PGD evaluation where a stage has an
`eval_attack`, and `LOAD_S` for loading the model and data. On the AVX2 machine that model is within
-29 % to +23 % of the four quick profiles' measured wall times. Here it ran 1.3-4.3x short, so each
family's seconds are multiplied by `HERE_OVER_MODEL`, its measured over modelled stage time in the
standard runs (docs/reproductions/plan_calibration.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

ASSUMED_FLOPS = 1e14
TRAIN = 3  # forward + backward, in forward passes
# forward passes per example and step beyond one training pass, by stage (Algorithm 1 of the SD paper:
# masked student fwd+bwd, unmasked student fwd+bwd, teacher fwd; KD-QAT adds the teacher's forward)
PASSES = {"self_distill": 2 * TRAIN + 1, "qat_distill": TRAIN + 1}


@dataclass(frozen=True)
class PlannedRun:
    """One recipe a profile runs, with what the estimate needs."""

    recipe: dict
    examples: int  # training examples per seed, used where data.train_size is not set
    forward_flops: float  # one forward pass over one example: ~2 × parameters × tokens (or patches)
    note: str = ""
    shared: int = 0  # leading stages the repro reuses from another run (a shared teacher): listed, not costed
    test_examples: int = 0  # examples one evaluation reads, used where data.test_size is not set


def stage_steps(name: str, cfg: dict, examples: int, previous_sparsity: float = 0.0) -> int:
    """Optimisation steps of one stage for one seed (0 for a stage that trains nothing, e.g. OMP)."""
    examples = (cfg.get("data") or {}).get("train_size") or examples  # transfer / LMP train on their own task
    if name == "draw_ticket" and cfg.get("scheme", "omp") == "omp":
        return 0
    rounds = cfg.get("rounds", 1) if name == "self_distill" else 1  # each SD round trains its own student
    if cfg.get("steps"):
        return rounds * int(cfg["steps"])
    if name == "draw_ticket" and cfg.get("scheme") == "aimp":
        rounds = aimp_rounds(cfg, previous_sparsity)
    return rounds * math.ceil(cfg.get("epochs", 3.0) * examples / cfg.get("batch_size", 32))


def aimp_rounds(cfg: dict, previous: float) -> int:
    """A-IMP rounds from the previous ticket's sparsity to this one's: `rounds`, or as many rounds of
    `rate` as the target needs (the last one stopping at it)."""
    if not cfg.get("rate"):
        return cfg.get("rounds", 3)
    keep = (1 - cfg.get("sparsity", 0.7)) / (1 - previous)
    return max(1, math.ceil(math.log(keep) / math.log(1 - cfg["rate"]) - 1e-9))


def stage_passes(name: str, cfg: dict) -> int:
    attack = cfg.get("attack") or {}
    if name in ("robust_pretrain", "draw_ticket") and attack:
        return TRAIN * (attack.get("steps", 10) + 1)  # each PGD step is a forward and a backward
    if name == "transfer" and cfg.get("protocol") == "linear":
        return 1  # a frozen ticket: its forward, and a backward through the new head only
    return PASSES.get(name, TRAIN)


# The CPU model, per stage family: (fixed seconds per step, effective FLOP/s), FLOPs counted as above (2 x all
# parameters x tokens a forward, embeddings included, so the rate is an effective one). Text is fitted on minilm-l6.
# 1. AVX2_FP32, the AVX2-only machine in fp32: a line through two idle step timings per stage, tailor bench engine's
#    at batch 4 x 32 tokens and the method's own bench at a larger batch (README; docs/reproductions/*.md).
#    With evaluation and loading as below it gives 18, 13, 21 and 14 min for the kdqat, selfdistill, vera and
#    tickets quick profiles, measured there at 15.6, 10.7, 29.1 and 13.1 min (tests/test_repro_plan.py).
# 2. MODEL_STEP, this machine in bf16: those lines scaled by the stage's bf16-here over fp32-there step time at
#    batch 4 x 32 (bench engine's two tables in the README). It assumed bf16 gains more on larger matrices; it does not.
_BENCH_AVX2_FP32 = {  # stage: ((batch x tokens, s), (batch x tokens, s)), forward passes per example
    "finetune": (((4, 32), 0.370), ((32, 64), 0.852)),  # bench vera: full fine-tuning
    "further_pretrain": (((4, 32), 0.427), ((16, 48), 0.505)),  # bench selfdistill
    "self_distill": (((4, 32), 0.626), ((16, 48), 1.045)),  # bench selfdistill
    "qat_distill": (((4, 32), 0.605), ((16, 64), 0.958)),  # bench kdqat: ternary step
    "vera": (((4, 32), 0.179), ((32, 64), 0.711)),  # bench vera: r=256
}
BF16_HERE_OVER_AVX2_FP32 = {
    "finetune": 0.138 / 0.370,
    "further_pretrain": 0.181 / 0.427,
    "self_distill": 0.287 / 0.626,
    "qat_distill": 0.194 / 0.605,
    "vera": 0.038 / 0.179,
    "image": 0.135 / 0.340,  # effnet-lite0, PGD-2
}


def _line(stage: str) -> tuple[float, float]:
    """(fixed seconds, FLOP/s) through a stage's two AVX2 timings."""
    ((small, t_small), (big, t_big)) = _BENCH_AVX2_FP32[stage]
    per_token = (t_big - t_small) / (big[0] * big[1] - small[0] * small[1])
    flops_per_token = PASSES.get(stage, TRAIN) * 2 * 22.7e6
    return t_small - per_token * small[0] * small[1], flops_per_token / per_token


AVX2_FP32 = {stage: _line(stage) for stage in _BENCH_AVX2_FP32}
AVX2_FP32["lora"] = AVX2_FP32["vera"]  # not fitted: taken as VeRA r=256's (a LoRA r=8 step is 0.87x of it)
# images: resnet_cifar 16-32-64, two blocks, 32 px, batch 64, bench tickets: 0.0895 s natural (1.09e10 FLOPs)
AVX2_FP32["image"] = (0.005, 1.2e11)  # robust_pretrain, draw_ticket, transfer: convolutions
BF16_HERE_OVER_AVX2_FP32["lora"] = BF16_HERE_OVER_AVX2_FP32["vera"]
MODEL_STEP = {
    stage: (fixed * BF16_HERE_OVER_AVX2_FP32[stage], rate / BF16_HERE_OVER_AVX2_FP32[stage])
    for stage, (fixed, rate) in AVX2_FP32.items()
}
# 3. HERE_OVER_MODEL: measured over modelled stage seconds in the standard runs on this machine, bf16
#    (docs/reproductions/plan_calibration.py): tickets' 560 image stages 63.9 / 22.5 min; kdqat's 20 students
#    2.62; vera's 5 LoRA and 15 VeRA stages 3.84 and 4.32; selfdistill's seed 0 (`--seeds 0`) FPT 1.32, SD 1.47;
#    finetune pooled over kdqat's 5 teachers (batch 32, 2.65) and that seed's 3 fine-tunes (batch 16, 1.82).
#    One ratio per family, so a family's other batch sizes are off by about as much as those two differ.
HERE_OVER_MODEL = {
    "image": 63.9 / 22.5,
    "finetune": 2.31,
    "further_pretrain": 1.32,
    "self_distill": 1.47,
    "qat_distill": 2.62,
    "lora": 3.84,
    "vera": 4.32,
}
VERA_R1024 = 1.34  # a VeRA r=1024 step over an r=256 one (tailor bench vera), interpolated linearly in r
IMAGE_STAGES = ("robust_pretrain", "draw_ticket", "transfer")
CPU_MACHINE = "2 cores of an AMD EPYC with AVX512-BF16, bf16"
LOAD_S = {"text": 3.0, "image": 1.0}  # loading a stage's model and data, per stage and seed (assumed)


def cpu_family(stage: str) -> str:
    """The stage's key in the CPU model: its own where fitted, "image" for the tickets stages, else finetune's."""
    return "image" if stage in IMAGE_STAGES else stage if stage in MODEL_STEP else "finetune"


def _cpu_seconds(
    name: str, cfg: dict, steps: int, passes: int, forward_flops: float, test_size: int, cpu: dict
) -> float:
    """Seconds of one stage for one seed on the CPU whose model is ``cpu`` (an estimate)."""
    fixed, rate = cpu[cpu_family(name)]
    per_step = fixed + cfg.get("batch_size", 32) * passes * forward_flops / rate
    if name == "vera":
        per_step *= 1 + (VERA_R1024 - 1) * (cfg.get("r", 256) - 256) / 768
    evals = 2 + (steps // cfg["eval_every"] if cfg.get("eval_every") else 0)  # validation and test, each eval_every
    attack = cfg.get("eval_attack") or {}
    robust = min(cfg.get("robust_eval_size", 500), test_size) * TRAIN * (attack.get("steps", 10) + 1) if attack else 0
    load = LOAD_S["image" if name in IMAGE_STAGES else "text"]
    # a new MLM head / pixel decoder trains alone first (charged as full steps); self_distill reuses the teacher's
    warmup = cfg.get("head_warmup_steps", 100) if name == "further_pretrain" else 0
    return load + (steps + warmup) * per_step + (evals * test_size + robust) * forward_flops / rate


def stage_costs(run: PlannedRun, cpu: dict | None = None) -> list[dict]:
    """Per stage: its folder id (``01-finetune``), steps per seed, FLOPs and CPU seconds per seed on the
    CPU whose model is ``cpu`` (default: `MODEL_STEP` scaled by `HERE_OVER_MODEL`, this machine; `MODEL_STEP` or
    `AVX2_FP32` unscaled), and whether a shared teacher stage is reused
    (listed, not costed)."""
    examples = run.recipe["data"].get("train_size") or run.examples
    test_size = run.recipe["data"].get("test_size") or run.test_examples
    out, previous = [], 0.0
    for i, stage in enumerate(run.recipe["stages"]):
        ((name, cfg),) = stage.items()
        n = stage_steps(name, cfg, examples, previous)
        cost = {"id": f"{i + 1:02d}-{name}", "stage": name, "steps": n, "flops": 0.0, "seconds": 0.0}
        cost["shared"] = i < run.shared
        out.append(cost)
        if cost["shared"]:
            continue
        if name == "draw_ticket" and cfg.get("scheme") == "aimp":
            previous = cfg.get("sparsity", 0.7)
        passes = stage_passes(name, cfg)
        stage_test = ((cfg.get("data") or {}).get("test_size")) or test_size
        model, scale = (MODEL_STEP, HERE_OVER_MODEL[cpu_family(name)]) if cpu is None else (cpu, 1.0)
        cost["flops"] = n * cfg.get("batch_size", 32) * passes * run.forward_flops
        cost["seconds"] = scale * _cpu_seconds(name, cfg, n, passes, run.forward_flops, stage_test, model)
    return out


def estimate(run: PlannedRun, cpu: dict | None = None) -> dict:
    """Steps per seed by stage, GPU hours for all seeds at ASSUMED_FLOPS, and CPU minutes for all seeds
    on the machine the standard profiles are sized for (``cpu``: as `stage_costs`)."""
    costs = stage_costs(run, cpu)
    seeds = len(run.recipe.get("seeds", [0]))
    return {
        "steps_per_seed": {c["id"]: c["steps"] for c in costs},
        "seeds": seeds,
        "gpu_hours": seeds * sum(c["flops"] for c in costs) / ASSUMED_FLOPS / 3600,
        "cpu_minutes": seeds * sum(c["seconds"] for c in costs) / 60,
    }


def render(method: str, profile: str, runs: list[PlannedRun]) -> str:
    """The plan as text; raises ConfigError on the first recipe that does not validate."""
    from .recipe import parse_recipe

    lines, total = (
        [
            f"tailor repro {method} --profile {profile}: {len(runs)} runs "
            f"(cost at an assumed {ASSUMED_FLOPS:.0e} FLOP/s; see tailor.plan)"
        ],
        0.0,
    )
    minutes = 0.0
    for run in runs:
        parse_recipe(run.recipe, f"{method} {profile} plan: {run.recipe['name']}")
        cost = estimate(run)
        total += cost["gpu_hours"]
        lines += [
            f"\n{run.recipe['name']}: model {run.recipe['model']}, seeds {run.recipe.get('seeds', [0])}"
            + (f"  ({run.note})" if run.note else ""),
            f"  data   {json.dumps(run.recipe['data'])}",
        ]
        lines += [
            f"  {sid}: {steps} steps/seed  {json.dumps(next(iter(stage.values())))}"
            + ("  (shared with another run: not costed)" if i < run.shared else "")
            for i, ((sid, steps), stage) in enumerate(zip(cost["steps_per_seed"].items(), run.recipe["stages"]))
        ]
        lines.append(
            f"  estimated {cost['gpu_hours']:.2f} GPU-hours for {cost['seeds']} seed(s); "
            f"CPU estimate {cost['cpu_minutes']:.1f} min"
        )
        minutes += cost["cpu_minutes"]
    lines.append(f"\ntotal: about {total:.1f} GPU-hours")
    lines.append(f"CPU estimate: about {minutes:.0f} min on {CPU_MACHINE} (an estimate, see tailor.plan)")
    return "\n".join(lines)
