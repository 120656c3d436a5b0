"""PNG plots: a metric per run and stage (bars, mean ± std) and training-loss curves."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def metric_bars(results: list[dict], metric: str, out: Path) -> Path:
    labels, means, stds = [], [], []
    for res in results:
        for stage_id, stats in res["summary"].items():
            if metric in stats:
                labels.append(f"{res['recipe']}\n{stage_id}")
                means.append(stats[metric]["mean"] * 100)
                stds.append(stats[metric]["std"] * 100)
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(labels)), 3.5))
    ax.bar(range(len(labels)), means, yerr=stds, capsize=4, color="#4C72B0")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel(f"{metric} (%)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def loss_curves(run_dirs: list[Path], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for run in run_dirs:
        for metrics in sorted(Path(run).glob("seed-*/*/metrics.jsonl")):
            rows = [json.loads(line) for line in metrics.read_text().splitlines()]
            pts = [(r["step"], r["loss"]) for r in rows if "loss" in r]
            if pts:
                ax.plot(*zip(*pts), label=f"{Path(run).name}/{metrics.parent.parent.name}/{metrics.parent.name}", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
