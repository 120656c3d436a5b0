"""PNG plots: a metric per run and stage (bars, mean ± std), training-loss curves, and `finish`,
the labels-grid-save tail every repro plot shares."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def finish(
    fig,
    axes,
    out: Path,
    *,
    xlabel: str | None = None,
    ylabel: str | None = None,
    grid: str = "both",
    legend: int | None = None,
) -> Path:
    """The tail every plot shares: axis labels, a light grid, an optional legend (its font size),
    tight layout, a 120-dpi PNG, and the figure closed."""
    for ax in axes if isinstance(axes, (list, tuple)) else [axes]:
        if xlabel:
            ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.grid(axis=grid, alpha=0.3)
    if legend:
        (axes[0] if isinstance(axes, (list, tuple)) else axes).legend(fontsize=legend)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


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
    return finish(fig, ax, out, ylabel=f"{metric} (%)", grid="y")


def loss_curves(run_dirs: list[Path], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for run in run_dirs:
        for metrics in sorted(Path(run).glob("seed-*/*/metrics.jsonl")):
            rows = [json.loads(line) for line in metrics.read_text().splitlines()]
            pts = [(r["step"], r["loss"]) for r in rows if "loss" in r]
            if pts:
                ax.plot(*zip(*pts), label=f"{Path(run).name}/{metrics.parent.parent.name}/{metrics.parent.name}", lw=1)
    return finish(fig, ax, out, xlabel="step", ylabel="training loss", legend=6)
