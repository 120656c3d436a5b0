"""``tailor bench kdqat``: side-by-side costs of the ternary student vs the full-precision model.

Measured in one process, interleaved rep by rep so machine load hits both sides alike:
1. one training step: FP fine-tuning (cross-entropy) vs QAT (fake-quantized student + teacher
   forward + TernaryBERT KD terms);
2. size on disk: fp32 safetensors vs the packed file, with the per-component report;
3. CPU inference latency: fp32 model vs the model rebuilt from the packed file (reference backend:
   dequantized fp32 weights and fake-quantized 8-bit activations);
4. deployment (:mod:`.deploy_bench`): fp32, bf16, the integer backend and its ONNX export in
   onnxruntime at batch 1, 8 and 64, giving the ``*_speedup`` keys of ``bench.json``.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch

from ...engine.losses import CrossEntropy, weighted_sum
from ...engine.timing import interleaved
from .config import DistillConfig, QuantConfig
from .deploy_bench import deployment
from .deploy_bench import markdown as deployment_markdown
from .export import PACKED_FILE, export_packed, load_packed, size_report
from .objective import KDQATObjective
from .student import quantize_model


def _batch(tokenizer, size: int, length: int) -> dict[str, torch.Tensor]:
    text = "the quick brown fox jumps over the lazy dog " * 16
    enc = tokenizer([text] * size, truncation=True, max_length=length, padding="max_length", return_tensors="pt")
    return {**enc, "labels": torch.zeros(size, dtype=torch.long)}


def _inputs(tokenizer, size: int, length: int) -> dict[str, torch.Tensor]:
    return {k: v for k, v in _batch(tokenizer, size, length).items() if k != "labels"}


def _train_step(model, objective, batch, teacher=None):
    def step():
        model.zero_grad(set_to_none=True)
        weighted_sum(objective.terms(model, batch, teacher), objective.weights).backward()

    return step


def run(out: Path, model_name: str = "minilm-l6", batch_size: int = 16, length: int = 64, reps: int = 5) -> dict:
    """Measure training, sizes and inference side by side; the CLI writes bench.json and `markdown`'s table."""
    from ...zoo.models import load, tokenizer

    teacher = load(model_name, "classifier", 2).eval()
    fp = copy.deepcopy(teacher).train()
    student = quantize_model(copy.deepcopy(teacher), QuantConfig()).train()
    batch = _batch(tokenizer(model_name), batch_size, length)
    kd = KDQATObjective(DistillConfig(preset="ternarybert"), student, teacher)
    train = interleaved(
        {"fp32_step": _train_step(fp, CrossEntropy(), batch), "qat_step": _train_step(student, kd, batch, teacher)},
        reps,
    )

    with tempfile.TemporaryDirectory() as tmp:
        teacher.save_pretrained(Path(tmp) / "fp32")
        fp32_bytes = (Path(tmp) / "fp32" / "model.safetensors").stat().st_size
        folder = export_packed(student.eval(), Path(tmp) / "packed", QuantConfig())
        packed_bytes = (folder / PACKED_FILE).stat().st_size
        sizes = size_report(student, folder)
        packed = load_packed(folder)
        deploy = deployment(teacher, folder, lambda b: _inputs(tokenizer(model_name), b, length), reps, Path(tmp))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    single = {k: v[:1] for k, v in inputs.items()}

    def infer(model, x):
        def call():
            with torch.no_grad():
                model(**x)

        return call

    latency = interleaved(
        {
            "fp32_b1": infer(teacher, single),
            "packed_b1": infer(packed, single),
            f"fp32_b{batch_size}": infer(teacher, inputs),
            f"packed_b{batch_size}": infer(packed, inputs),
        },
        reps,
    )
    result = {
        "model": model_name,
        "batch_size": batch_size,
        "length": length,
        "reps": reps,
        "torch_threads": torch.get_num_threads(),
        "train_step_seconds": train,
        "qat_over_fp32_step": train["qat_step"] / train["fp32_step"],
        "file_bytes": {
            "fp32_safetensors": fp32_bytes,
            "packed_safetensors": packed_bytes,
            "ratio": fp32_bytes / packed_bytes,
        },
        "size_report": sizes,
        "latency_seconds": latency,
        "packed_over_fp32_latency": {
            k: latency[f"packed_{k}"] / latency[f"fp32_{k}"] for k in ("b1", f"b{batch_size}")
        },
        **deploy,
    }
    return result


def markdown(r: dict) -> str:
    s, lat, f = r["train_step_seconds"], r["latency_seconds"], r["file_bytes"]
    b = f"b{r['batch_size']}"
    lines = [
        f"kdqat bench: {r['model']}, batch {r['batch_size']} x {r['length']} tokens, median of {r['reps']}, "
        f"{r['torch_threads']} torch threads",
        "",
        "| measurement | full precision | ternary (W2A8) | ratio |",
        "|---|---|---|---|",
        f"| training step (s) | {s['fp32_step']:.3f} | {s['qat_step']:.3f} | {r['qat_over_fp32_step']:.2f}x |",
        f"| model file (MB) | {f['fp32_safetensors'] / 1e6:.2f} | {f['packed_safetensors'] / 1e6:.2f} | "
        f"{f['ratio']:.2f}x smaller |",
        f"| inference, batch 1 (ms) | {lat['fp32_b1'] * 1e3:.1f} | {lat['packed_b1'] * 1e3:.1f} | "
        f"{r['packed_over_fp32_latency']['b1']:.2f}x |",
        f"| inference, {b.replace('b', 'batch ')} (ms) | {lat['fp32_' + b] * 1e3:.1f} | "
        f"{lat['packed_' + b] * 1e3:.1f} | {r['packed_over_fp32_latency'][b]:.2f}x |",
        "",
        "| component | fp32 bytes | packed bytes | ratio |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['fp32_bytes']:,} | {v['packed_bytes']:,} | {v['ratio']:.2f}x |"
        for k, v in r["size_report"].items()
    ]
    lines += deployment_markdown(r)
    return "\n".join(lines) + "\n"
