"""`tailor bench tickets`: what robustness and structured sparsity cost or save, measured side by side.

1. One optimisation step of PGD adversarial training (PGD-k, l_inf) vs a natural step, same model
   and batch: the price of robust pretraining and of A-IMP rounds.
2. CPU inference of a resnet_cifar ticket with 50% of its block-internal channels pruned, exported
   as a physically smaller model, vs the dense model (and the masked-but-not-exported model, which
   is as slow as dense). Timings alternate between the compared models, median of repeats.
3. CPU inference of a real BERT-style encoder (minilm-l6) vs its ticket drawn by OMP with pattern
   heads_ffn (50% of each layer's attention heads and FFN neurons) and exported physically smaller
   (:mod:`.transformer_structured`), batch 64 × 64 tokens.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ...engine.timing import interleaved
from ...zoo.architectures.resnet import ResNetCifarConfig, ResNetCifarForImageClassification
from .attacks import PixelSpace, pgd
from .config import MaskSpec
from .masks import apply_masks
from .pruning import omp
from .structured import export_channel_pruned, export_smaller

WIDTHS, DEPTHS, SIZE, BATCH = (16, 32, 64), (2, 2, 2), 32, 64


def _model() -> ResNetCifarForImageClassification:
    torch.manual_seed(0)
    return ResNetCifarForImageClassification(
        ResNetCifarConfig(stem_channels=WIDTHS[0], widths=list(WIDTHS), depths=list(DEPTHS), num_labels=10)
    )


def train_step_costs(repeats: int = 10, pgd_steps: tuple[int, ...] = (3, 7)) -> dict[str, float]:
    model = _model()
    net = PixelSpace(model, (0.5,) * 3, (0.5,) * 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.rand(BATCH, 3, SIZE, SIZE), torch.randint(0, 10, (BATCH,))

    def step(k: int):
        def run():
            if k:
                model.eval()
                adv = pgd(net, x, y, eps=4 / 255, alpha=2.5 * (4 / 255) / k, steps=k)
                model.train()
            else:
                adv = x
            loss = F.cross_entropy(net(adv), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return run

    return interleaved({"natural": step(0), **{f"pgd-{k}": step(k) for k in pgd_steps}}, repeats, warmup=2)


@torch.inference_mode()
def inference_costs(repeats: int = 20) -> tuple[dict[str, float], dict[str, int]]:
    dense = _model().eval()
    masks = omp(dense, MaskSpec(pattern="channel", sparsity=0.5, scope="layerwise"))
    masked = _model().eval()
    apply_masks(masked, masks)
    small = export_channel_pruned(masked, masks).eval()
    x = torch.rand(BATCH, 3, SIZE, SIZE)
    diff = float((small(pixel_values=x).logits - masked(pixel_values=x).logits).abs().max())
    models = {"dense": dense, "masked (50% channels, not exported)": masked, "exported (50% channels)": small}
    secs = interleaved({k: (lambda m=m: m(pixel_values=x)) for k, m in models.items()}, repeats, warmup=2)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    return secs, params | {"max_abs_logit_diff_exported_vs_masked": diff}


@torch.inference_mode()
def transformer_costs(model_name: str = "minilm-l6", repeats: int = 5, length: int = 64) -> dict:
    from ...zoo.models import load, tokenizer

    dense = load(model_name, "classifier", 2).eval()
    masks = omp(dense, MaskSpec(pattern="heads_ffn", sparsity=0.5, scope="layerwise"))
    small = export_smaller(dense, masks).eval()
    x = tokenizer(model_name)(
        ["the quick brown fox jumps over the lazy dog " * 16] * BATCH,
        truncation=True,
        max_length=length,
        padding="max_length",
        return_tensors="pt",
    )
    masked = load(model_name, "classifier", 2).eval()
    masked.load_state_dict(dense.state_dict())
    apply_masks(masked, masks)
    diff = float((small(**x).logits - masked(**x).logits).abs().max())
    del masked
    secs = interleaved({"dense": lambda: dense(**x), "structured50": lambda: small(**x)}, repeats, warmup=1)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {
        "model": model_name,
        "batch": BATCH,
        "length": length,
        "seconds": secs,
        "ticket": "omp heads_ffn 0.5 layerwise",
        "max_abs_logit_diff_exported_vs_masked": diff,
        "structure": small.config.pruned_structure,
        "params": {"dense": count(dense), "structured50": count(small)},
    }


def run(out: Path) -> dict:
    """Training-step and inference costs side by side; the CLI writes bench.json and `markdown`'s table."""
    steps = train_step_costs()
    infer, info = inference_costs()
    bert = transformer_costs()
    result = {
        "setup": {
            "model": f"resnet_cifar widths={WIDTHS} depths={DEPTHS}",
            "batch": BATCH,
            "image": SIZE,
            "torch_threads": torch.get_num_threads(),
        },
        "train_step_seconds": steps,
        "train_step_ratio_vs_natural": {k: v / steps["natural"] for k, v in steps.items()},
        "inference_seconds": infer,
        "inference_speedup_vs_dense": {k: infer["dense"] / v for k, v in infer.items()},
        "model_info": info,
        "channel50_speedup": infer["dense"] / infer["exported (50% channels)"],
        "transformer_structured50": bert,
        "transformer_structured50_speedup": bert["seconds"]["dense"] / bert["seconds"]["structured50"],
    }
    return result


def markdown(result: dict) -> str:
    """The bench table (the CLI prints it and writes it to bench.md)."""
    steps, infer, bert = result["train_step_seconds"], result["inference_seconds"], result["transformer_structured50"]
    lines = ["| measurement | seconds (median) | ratio |", "|---|---|---|"]
    lines += [
        f"| train step, {k} | {v:.4f} | {result['train_step_ratio_vs_natural'][k]:.2f}x natural |"
        for k, v in steps.items()
    ]
    lines += [
        f"| inference batch {BATCH}, {k} | {v:.4f} | {result['inference_speedup_vs_dense'][k]:.2f}x faster than dense |"
        for k, v in infer.items()
    ]
    lines += [
        f"| inference {bert['model']} batch {BATCH} x {bert['length']}, {k} | {v:.4f} | "
        f"{bert['seconds']['dense'] / v:.2f}x faster than dense ({bert['params'][k]:,} params) |"
        for k, v in bert["seconds"].items()
    ]
    return "\n".join(lines) + "\n"
