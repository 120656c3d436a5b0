"""`tailor bench vera`: costs measured side by side in one process, on the device the engine picks.

1. Training step time (forward, backward, AdamW step) of full fine-tuning vs LoRA (r=8) vs VeRA
   (r=256, r=1024) on one classification batch; rounds are interleaved so load changes on a shared
   machine hit every method alike. On CUDA, peak memory per method is reported too.
2. Serving 64 requests: one mixed batch over 64 distinct VeRA adapters (MixedVeraBatch) vs one
   batch on a single adapter (plain peft) vs a loop that switches peft's active adapter per request.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from ...engine.settings import TrainSettings
from ...engine.timing import interleaved
from ...engine.trainer import training_arguments
from ...zoo import models as zoo
from .adapters import build_lora, build_vera, randomize_adapters
from .config import LoraFields, VeraFields
from .multi_adapter import MixedVeraBatch

MODEL, FALLBACK = "minilm-l6", "tiny-bert"
BATCH, SEQ, LABELS, ADAPTERS = 64, 64, 4, 64


def engine_device() -> torch.device:
    """The device transformers.Trainer would train on under tailor's engine settings."""
    with tempfile.TemporaryDirectory() as tmp:
        return training_arguments(TrainSettings(), Path(tmp), 0).device


def _model_name() -> str:
    info = zoo.get_info(MODEL)
    return MODEL if info is not None and info.available() else FALLBACK


def _batch(model, rows: int, device) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    first = 1000 if model.config.vocab_size > 2000 else 5  # past the special tokens; content is irrelevant here
    ids = torch.randint(first, model.config.vocab_size, (rows, SEQ), generator=gen)
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}


def train_step_times(name: str, device, rounds: int) -> dict:
    base = zoo.load(name, "classifier", num_labels=LABELS)
    models = {
        "full": base,
        "lora_r8": build_lora(copy.deepcopy(base), LoraFields(r=8)),
        "vera_r256": build_vera(copy.deepcopy(base), VeraFields(r=256)),
        "vera_r1024": build_vera(copy.deepcopy(base), VeraFields(r=1024)),
    }
    batch = _batch(base, 32, device)
    labels = torch.arange(32, device=device) % LABELS
    steps, peak = {}, {}
    for key, model in models.items():
        model.to(device).train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

        def step(model=model, opt=opt):
            F.cross_entropy(model(**batch).logits, labels).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        steps[key] = step
    times = interleaved(steps, rounds, device=device)
    if device.type == "cuda":
        for key, fn in steps.items():
            torch.cuda.reset_peak_memory_stats(device)
            fn()
            peak[key] = torch.cuda.max_memory_allocated(device)
    out = {k: {"seconds_per_step": t, "vs_full": t / times["full"]} for k, t in times.items()}
    for key, nbytes in peak.items():
        out[key]["peak_memory_bytes"] = nbytes
    return out


def serving_times(name: str, device, rounds: int) -> dict:
    base = zoo.load(name, "classifier", num_labels=LABELS)
    model = build_vera(base, VeraFields(r=256), adapter_name="a0")
    for i in range(1, ADAPTERS):
        model.add_adapter(f"a{i}", copy.deepcopy(model.peft_config["a0"]))
    randomize_adapters(model)
    model.to(device).eval()
    names = [f"a{i}" for i in range(ADAPTERS)]
    server = MixedVeraBatch(model, names, precision="fp32")  # as the single and looped runs: one precision
    batch = _batch(base, BATCH, device)

    @torch.no_grad()
    def single_adapter():
        model.set_adapter("a0")
        return model(**batch).logits

    @torch.no_grad()
    def switching_loop():
        outs = []
        for row, name in enumerate(names):
            model.set_adapter(name)
            outs.append(model(**{k: v[row : row + 1] for k, v in batch.items()}).logits)
        return torch.cat(outs)

    def mixed():
        return server(names, **batch).logits

    max_diff = (mixed() - switching_loop()).abs().max().item()
    times = interleaved(
        {"mixed_64_adapters": mixed, "single_adapter": single_adapter, "switching_loop": switching_loop},
        rounds,
        device=device,
    )
    return {
        "seconds": times,
        "mixed_vs_single": times["mixed_64_adapters"] / times["single_adapter"],
        "loop_vs_mixed": times["switching_loop"] / times["mixed_64_adapters"],
        "max_abs_diff_mixed_vs_loop": max_diff,
        "target_met": times["mixed_64_adapters"] <= 1.3 * times["single_adapter"]
        and times["mixed_64_adapters"] < times["switching_loop"],
    }


def run(out: Path, rounds: int = 5) -> dict:
    device = engine_device()
    name = _model_name()
    print(f"tailor bench vera: model {name}, device {device}, {torch.get_num_threads()} threads", flush=True)
    result = {
        "model": name,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "train_step": train_step_times(name, device, rounds),
        "serving": serving_times(name, device, rounds),
    }
    _print(result)
    return result


def _print(result: dict) -> None:
    print("\ntraining step (batch 32 x 64 tokens)")
    for key, row in result["train_step"].items():
        mem = f"  peak {row['peak_memory_bytes'] / 2**20:.0f} MiB" if "peak_memory_bytes" in row else ""
        print(f"  {key:<11} {row['seconds_per_step'] * 1000:8.1f} ms/step  {row['vs_full']:.2f}x full{mem}")
    s = result["serving"]
    print(f"\nserving {BATCH} requests x {SEQ} tokens")
    for key, t in s["seconds"].items():
        print(f"  {key:<18} {t * 1000:8.1f} ms")
    print(
        f"  mixed / single = {s['mixed_vs_single']:.2f}x (target <= 1.3), loop / mixed = {s['loop_vs_mixed']:.2f}x "
        f"(target > 1); max |mixed - loop| = {s['max_abs_diff_mixed_vs_loop']:.1e}"
    )
