"""The paper's attention diagnostics (Sec. 3.2, App. A.1/A.2), per layer and head, hand-written.

All functions take attention probabilities ``(B, H, n, n)`` and an optional ``(B, n)`` padding mask;
padded query rows and key columns are ignored. Results are ``(H,)`` tensors (averaged over batch and
real query rows) unless said otherwise.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .losses import PROB_FLOOR


def _masks(probs: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Key mask ``(B, 1, 1, n)`` and query-row weights ``(B, 1, n)`` (1 for real tokens)."""
    b, _, n_query, n_keys = probs.shape
    if attention_mask is None:
        return probs.new_ones(b, 1, 1, n_keys), probs.new_ones(b, 1, n_query)
    m = attention_mask.to(probs.dtype)  # self-attention: queries and keys are the same tokens
    return m[:, None, None, :], m[:, None, :]


def _mean_rows(values: Tensor, rows: Tensor) -> Tensor:
    """Average ``(B, H, n)`` over real query rows, then batch → ``(H,)``."""
    return ((values * rows).sum(-1) / rows.sum(-1).clamp_min(1)).mean(0)


def map_kl_per_head(student: Tensor, teacher: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """``KL(teacher ‖ student)`` of each query row over real keys, averaged per head (nats)."""
    keys, rows = _masks(teacher, attention_mask)
    s, t = student.clamp_min(PROB_FLOOR), teacher.clamp_min(PROB_FLOOR)
    return _mean_rows((t * (t.log() - s.log()) * keys).sum(-1), rows)


def entropy_per_head(probs: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Attention entropy ``-Σ_j p log p`` of each query row, averaged per head (nats)."""
    keys, rows = _masks(probs, attention_mask)
    p = probs.clamp_min(PROB_FLOOR)
    return _mean_rows(-(p * p.log() * keys).sum(-1), rows)


def cover_length_ratio(student: Tensor, teacher: Tensor, attention_mask: Tensor | None = None, k: int = 5) -> Tensor:
    """Fig. 4: how far down the student's descending ranking all of the teacher's top-k keys appear.

    Per query row: ``max_{j ∈ topk_T} pos_S(j) / n_real`` with 0-based ``pos_S`` (the authors' form);
    averaged over real rows (the reference code's ``Σ_{rows<n-1}/n`` off-by-one is not copied).
    """
    keys, rows = _masks(teacher, attention_mask)
    low = torch.finfo(teacher.dtype).min
    t = teacher.masked_fill(keys == 0, low)
    s = student.masked_fill(keys == 0, low)
    k = min(k, teacher.shape[-1])
    top_teacher = t.topk(k, dim=-1).indices
    position_in_student = s.argsort(dim=-1, descending=True).argsort(dim=-1)  # rank of each key
    cover = position_in_student.gather(-1, top_teacher).amax(-1).to(teacher.dtype)
    lengths = keys.sum(-1)  # (B, 1, 1)
    return _mean_rows(cover / lengths, rows)


def ranking_loss(student: Tensor, teacher: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Eq. 9 in its hinge (discordant-pairs) form, as the authors' code and prose describe:
    ``Σ_{i<j} max(0, −(s_i − s_j)·sign(t_i − t_j))`` per query row over real keys, summed over rows
    and averaged over the batch → ``(H,)``. Memory is O(B·H·n³): meant for a few examples."""
    keys, rows = _masks(teacher, attention_mask)
    pair = keys.unsqueeze(-1) * keys.unsqueeze(-2)  # (B, 1, 1, n, n)
    ds = student.unsqueeze(-1) - student.unsqueeze(-2)
    dt = torch.sign(teacher.unsqueeze(-1) - teacher.unsqueeze(-2))
    upper = torch.ones_like(ds[0, 0, 0]).triu(1)
    per_row = (torch.relu(-ds * dt) * pair * upper).sum((-2, -1))  # (B, H, n)
    return (per_row * rows).sum(-1).mean(0)


def attention_report(
    student: list[Tensor], teacher: list[Tensor], attention_mask: Tensor | None = None, k: int = 5
) -> dict[str, list[list[float]]]:
    """Every diagnostic as ``[layer][head]`` lists (JSON-ready)."""

    def table(fn, *args):
        return [fn(*a, attention_mask).tolist() for a in zip(*args)]

    return {
        "map_kl": table(map_kl_per_head, student, teacher),
        "cover_length_ratio": [cover_length_ratio(s, t, attention_mask, k).tolist() for s, t in zip(student, teacher)],
        "ranking_loss": table(ranking_loss, student, teacher),
        "entropy_student": table(entropy_per_head, student),
        "entropy_teacher": table(entropy_per_head, teacher),
    }


def plot_maps(
    student: Tensor, teacher: Tensor, layer: int, head: int, path: str | Path, tokens: list[str] | None = None
) -> Path:
    """Fig. 8-style PNG: teacher vs student attention map of one example, layer and head."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(tokens) if tokens else teacher.shape[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, maps, title in ((axes[0], teacher, "teacher (FP)"), (axes[1], student, "student (quantized)")):
        im = ax.imshow(maps[:n, :n].detach().cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"{title}: layer {layer}, head {head}")
        if tokens:
            ax.set_xticks(range(n), tokens, rotation=90, fontsize=6)
            ax.set_yticks(range(n), tokens, fontsize=6)
    fig.colorbar(im, ax=axes, shrink=0.8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
