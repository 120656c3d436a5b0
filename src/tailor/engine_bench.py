"""`tailor bench engine`: bf16 against fp32 for one training step of each method's main stage and
for inference at batch 1 and 64, on real zoo models (minilm-l6, effnet-lite0), in one process.

Each step is what the engine runs: the stage's own objective under `precision.autocast` (as the
trainer does), backward and an AdamW update; fp32 and bf16 alternate call by call
(`timing.interleaved`), so machine load hits both alike. bench.json holds
`{"train_speedup": {stage: x}, "inference_speedup": {"b1": x, "b64": x}}` (fp32 time / bf16 time;
> 1 means bf16 is faster), the precision `auto` resolves to here and the CPU's bf16 units; the
seconds and the setup go under ``details``. Where bf16 misses the issue's target for the finetune
step or batch-64 inference, one profiled call of each side (torch.profiler) puts the top 5 ops by
self CPU time, fp32 beside bf16, into bench.json (`profile`) and the printed table.
On a CPU without AMX/AVX512-BF16 bf16 is emulated (about 100x slower per matmul), so batches are
small and repeats few.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from .engine.inputs import prepare
from .engine.losses import CrossEntropy, weighted_sum
from .engine.precision import PrecisionChoice, autocast, cpu_bf16_units, resolve
from .engine.timing import interleaved
from .zoo import models as zoo
from .zoo.data import DataConfig, load_task

CHOICES = {"fp32": PrecisionChoice("fp32", "bench"), "bf16": PrecisionChoice("bf16", "bench")}
TEXT = DataConfig(name="tweets2016", max_length=32)
TRAIN_BATCH, IMAGE_SIZE, PGD_STEPS = 4, 64, 2
# issue 10's targets (bf16 over fp32) for the two cases profiled when missed: one call each, fp32 and bf16
TARGETS = {"train_finetune": 1.7, "inference_b64": 3.5}


def _text_batch(size: int) -> tuple[dict, object]:
    data = prepare(load_task(TEXT.model_copy(update={"train_size": size}), 0), "minilm-l6", TEXT)
    return data.collator([data.train[i] for i in range(size)]), data


def _stages(batch: dict, data) -> dict:
    """stage -> (model, objective, teacher, batch): each method's main stage, built as the stage builds it."""
    from .methods.kdqat.config import QatDistillConfig
    from .methods.kdqat.objective import KDQATObjective
    from .methods.kdqat.student import quantize_model
    from .methods.selfdistill.objectives import MaskedAutoEncodingObjective, MaskedLM, SelfDistillObjective
    from .methods.tickets.config import AttackConfig
    from .methods.tickets.training import AdversarialCE
    from .methods.vera.adapters import build_vera
    from .methods.vera.config import VeraFields

    tok = data.tokenizer
    classifier = zoo.load("minilm-l6", "classifier", num_labels=data.num_labels)
    mlm = zoo.load("minilm-l6", "mlm")
    backend = MaskedLM(
        mask_token_id=tok.mask_token_id, special_ids=tok.all_special_ids, vocab_size=mlm.config.vocab_size
    )
    teacher = copy.deepcopy(classifier).eval().requires_grad_(False)
    student = quantize_model(copy.deepcopy(classifier), QatDistillConfig().quant)
    cfg = QatDistillConfig()
    vera = build_vera(copy.deepcopy(classifier), VeraFields(r=256))
    images = prepare(
        load_task(DataConfig(name="digits", train_size=TRAIN_BATCH, image_size=IMAGE_SIZE), 0),
        "effnet-lite0",
        DataConfig(name="digits", image_size=IMAGE_SIZE),
        normalize=False,
    )
    image_batch = images.collator([images.train[i] for i in range(TRAIN_BATCH)])
    effnet = zoo.load("effnet-lite0", "classifier", num_labels=images.num_labels)
    attack = AttackConfig(kind="pgd", eps="4/255", steps=PGD_STEPS)
    return {
        "finetune": (classifier, CrossEntropy(), None, batch),
        "further_pretrain": (mlm, MaskedAutoEncodingObjective(backend), None, batch),
        "self_distill": (
            copy.deepcopy(mlm),
            SelfDistillObjective(backend),
            copy.deepcopy(mlm.base_model).eval(),
            batch,
        ),
        "qat_distill": (student, KDQATObjective(cfg.distill, student, teacher), teacher, batch),
        "vera": (vera, CrossEntropy(), None, batch),
        "robust_pretrain": (effnet, AdversarialCE(attack, images.image.mean, images.image.std), None, image_batch),
    }


def _train_step(model, objective, teacher, batch, choice: PrecisionChoice):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(choice, "cpu"):
            loss = weighted_sum(objective.terms(model, batch, teacher), objective.weights)
        loss.backward()
        optimizer.step()

    return step


def _forward(model, batch: dict, choice: PrecisionChoice):
    inputs = {k: v for k, v in batch.items() if k != "labels"}

    @torch.no_grad()
    def forward():
        with autocast(choice, "cpu"):
            model(**inputs)

    return forward


def _top_ops(fn, k: int = 5) -> list[dict]:
    """The k ops with the most self CPU time in one call of `fn` (torch.profiler), with their share of it."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:k]
    return [
        {"op": e.key, "self_cpu_s": e.self_cpu_time_total / 1e6, "share": e.self_cpu_time_total / total} for e in top
    ]


def _profile_if_missed(profiles: dict, case: str, speedup: float, fns: dict) -> None:
    """Where bf16 misses the issue's target for `case`, record where fp32's and bf16's time goes."""
    target = TARGETS[case]
    if speedup < target:
        profiles[case] = {"target": target, "speedup": speedup, **{n: _top_ops(fn) for n, fn in fns.items()}}


def run(out: Path, repeats: int = 2) -> dict:
    torch.manual_seed(0)
    batch, data = _text_batch(64)
    small = {k: v[:TRAIN_BATCH] for k, v in batch.items()}
    train_times, profiles = {}, {}
    for stage, (model, objective, teacher, stage_batch) in _stages(small, data).items():
        steps = {name: _train_step(model, objective, teacher, stage_batch, c) for name, c in CHOICES.items()}
        train_times[stage] = interleaved(steps, repeats=repeats, warmup=1)
        if f"train_{stage}" in TARGETS:
            _profile_if_missed(
                profiles, f"train_{stage}", train_times[stage]["fp32"] / train_times[stage]["bf16"], steps
            )
        print(
            f"  {stage}: fp32 {train_times[stage]['fp32']:.3f} s, bf16 {train_times[stage]['bf16']:.3f} s", flush=True
        )
    model = zoo.load("minilm-l6", "classifier", num_labels=data.num_labels).eval()
    infer_times = {}
    for size in (1, 64):
        b = {k: v[:size] for k, v in batch.items()}
        forwards = {n: _forward(model, b, c) for n, c in CHOICES.items()}
        t = infer_times[f"b{size}"] = interleaved(forwards, repeats=repeats, warmup=1)
        if f"inference_b{size}" in TARGETS:
            _profile_if_missed(profiles, f"inference_b{size}", t["fp32"] / t["bf16"], forwards)
    train_speedup = {s: t["fp32"] / t["bf16"] for s, t in train_times.items()}
    inference_speedup = {b: t["fp32"] / t["bf16"] for b, t in infer_times.items()}
    auto = resolve("auto", "cpu")
    result = {
        "train_speedup": train_speedup,
        "inference_speedup": inference_speedup,
        "auto_precision": auto.as_dict(),
        "cpu_bf16_units": cpu_bf16_units(),
        "profile": profiles,
    }
    details = {
        "seconds": {"train": train_times, "inference": infer_times},
        "setup": {
            "text": f"minilm-l6, tweets2016, batch {TRAIN_BATCH} x {TEXT.max_length} tokens (inference: 1 and 64)",
            "image": f"effnet-lite0, digits at {IMAGE_SIZE} px, batch {TRAIN_BATCH}, PGD-{PGD_STEPS}",
            "repeats": repeats,
            "threads": torch.get_num_threads(),
        },
    }
    _print(result, details)
    return {**result, "details": details}


def _print(result: dict, details: dict) -> None:
    print(
        f"\nbf16 vs fp32 (speedup = fp32 time / bf16 time; > 1: bf16 faster); auto here = "
        f"{result['auto_precision']['precision']} ({result['auto_precision']['reason']})"
    )
    print(f"{'':22s}{'fp32 s':>10s}{'bf16 s':>10s}{'speedup':>10s}")
    for stage, t in details["seconds"]["train"].items():
        print(f"train {stage:16s}{t['fp32']:10.3f}{t['bf16']:10.3f}{result['train_speedup'][stage]:10.3f}")
    for b, t in details["seconds"]["inference"].items():
        print(f"inference {b:12s}{t['fp32']:10.3f}{t['bf16']:10.3f}{result['inference_speedup'][b]:10.3f}")
    print(f"setup: {details['setup']}")
    for case, prof in result["profile"].items():
        print(
            f"\n{case}: bf16 {prof['speedup']:.3f}x fp32, target {prof['target']}x missed. Where the time goes "
            f"(top 5 ops by self CPU time, one call each; bf16 units: {result['cpu_bf16_units'] or 'none, emulated'}):"
        )
        print(f"  {'fp32 op':34s}{'s':>8s}{'share':>7s}   {'bf16 op':34s}{'s':>8s}{'share':>7s}")
        for a, b in zip(prof["fp32"], prof["bf16"]):
            print(
                f"  {a['op'][:34]:34s}{a['self_cpu_s']:8.3f}{a['share']:7.0%}   "
                f"{b['op'][:34]:34s}{b['self_cpu_s']:8.3f}{b['share']:7.0%}"
            )
