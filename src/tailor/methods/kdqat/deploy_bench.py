"""The deployment half of ``tailor bench kdqat``: fp32, bf16, the packed integer backend and its ONNX
export in onnxruntime, at batch 1, 8 and 64 × ``length`` tokens, with file sizes.

One process, interleaved call by call (:func:`tailor.engine.timing.interleaved`). bf16 gets its own
short interleaved round with the integer model (one timed call each) because on a CPU without
AMX/AVX512-BF16 it is emulated and ~100× slower than fp32. Where the integer model is slower than
fp32, a torch.profiler table of its batch-64 call says where the time goes.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ...deploy.onnx_export import export_onnx, op_counts, session
from ...engine.timing import interleaved
from .export import PACKED_FILE, load_packed
from .integer import cpu_int8_units

BATCHES = (1, 8, 64)


def _torch_call(model, x):
    def call():
        with torch.no_grad():
            model(**x)

    return call


def _ort_call(sess, x):
    feed = {k: v.numpy() for k, v in x.items()}
    return lambda: sess.run(["logits"], feed)


def _profile(model, x, rows: int = 8) -> list[dict]:
    from torch.profiler import profile

    with torch.no_grad(), profile() as prof:
        model(**x)
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:rows]
    return [{"op": e.key, "calls": e.count, "share": e.self_cpu_time_total / total} for e in top]


def deployment(fp32_model, packed_folder: Path, batch, reps: int, tmp: Path) -> dict:
    """Latencies, speedups, sizes and (where a target is missed) a profile; ``batch(size)`` gives inputs."""
    int8 = load_packed(packed_folder, backend="int8")
    bf16 = copy.deepcopy(fp32_model).to(torch.bfloat16)
    inputs = {b: batch(b) for b in BATCHES}
    onnx_path = export_onnx(int8, inputs[8], tmp / "onnx")
    sess = session(onnx_path, threads=torch.get_num_threads())
    with torch.no_grad():  # recorded beside the times (the export's own check runs on a test split)
        expected = int8(**inputs[8]).logits.numpy()
    got = _ort_call(sess, inputs[8])()[0]
    main, slow = {}, {}
    for b, x in inputs.items():
        main.update(
            interleaved(
                {
                    f"fp32_b{b}": _torch_call(fp32_model, x),
                    f"int8_b{b}": _torch_call(int8, x),
                    f"onnx_b{b}": _ort_call(sess, x),
                },
                reps,
            )
        )
        slow.update(interleaved({f"bf16_b{b}": _torch_call(bf16, x), f"int8_b{b}": _torch_call(int8, x)}, 1, warmup=0))
    keys = [f"b{b}" for b in BATCHES]
    result = {
        "int8_over_fp32_speedup": {k: main[f"fp32_{k}"] / main[f"int8_{k}"] for k in keys},
        "onnx_over_fp32_speedup": {k: main[f"fp32_{k}"] / main[f"onnx_{k}"] for k in keys},
        "int8_over_bf16_speedup": {k: slow[f"bf16_{k}"] / slow[f"int8_{k}"] for k in keys},
        "deployment": {
            "latency_seconds": main,
            "bf16_round_seconds": slow,
            "int8_backend": int8.kdqat_backend,
            "cpu_int8_units": list(cpu_int8_units()),
            "onnx_ops": op_counts(onnx_path),
            "onnx_bytes": onnx_path.stat().st_size,
            "onnx_over_packed_bytes": onnx_path.stat().st_size / (packed_folder / PACKED_FILE).stat().st_size,
            "onnxruntime_threads": torch.get_num_threads(),
            "onnx_vs_int8_max_abs_logit_diff_b8": float(abs(expected - got).max()),
        },
    }
    if result["int8_over_fp32_speedup"]["b64"] < 2.5:
        result["deployment"]["int8_b64_profile"] = _profile(int8, inputs[64])
    return result


def markdown(r: dict) -> list[str]:
    d = r["deployment"]
    lines = [
        "",
        f"Deployment ({d['int8_backend']['backend']}: {d['int8_backend']['reason']}), seconds per call "
        "(median; bf16 one call, in its own round with int8):",
        "",
        "| batch | fp32 | int8 (torch) | ONNX (onnxruntime) | bf16 | int8 / fp32 | ONNX / fp32 | int8 / bf16 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lat, slow = d["latency_seconds"], d["bf16_round_seconds"]
    for k in ("b1", "b8", "b64"):
        lines.append(
            f"| {k[1:]} | {lat['fp32_' + k]:.4f} | {lat['int8_' + k]:.4f} | {lat['onnx_' + k]:.4f} | "
            f"{slow['bf16_' + k]:.4f} | {r['int8_over_fp32_speedup'][k]:.2f}x | "
            f"{r['onnx_over_fp32_speedup'][k]:.2f}x | {r['int8_over_bf16_speedup'][k]:.2f}x |"
        )
    lines += [
        "",
        f"ONNX file {d['onnx_bytes'] / 1e6:.2f} MB = {d['onnx_over_packed_bytes']:.2f}x the packed safetensors "
        "(ONNX has no 2-bit type: one int8 per weight code); "
        f"{d['onnx_ops'].get('MatMulInteger', 0)} MatMulInteger nodes",
    ]
    if "int8_b64_profile" in d:
        lines += [
            "",
            "Where the integer model's batch-64 time goes (torch.profiler, self CPU time):",
            "",
            "| op | calls | share |",
            "|---|---|---|",
        ]
        lines += [f"| {p['op']} | {p['calls']} | {p['share']:.1%} |" for p in d["int8_b64_profile"]]
    return lines
