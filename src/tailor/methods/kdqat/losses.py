"""The KD terms of TernaryBERT and Kim et al. (EMNLP 2022), as plain tensor functions.

Hand-written because they are the paper's contribution; each takes teacher and student tensors of
equal shape (lists are per layer, already selected) so it works for any teacher/student pair.
Reductions follow the authors' code (spec §2): MSEs are means over all elements with padding
included and summed over layers; the map KL is masked to real tokens and divided by each example's
length. No τ² factor anywhere (the reference code has none). Every term runs in fp32, also under
bf16/fp16 autocast (``full_precision``): softmax/log and small MSEs lose too much in 8 mantissa bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from ...engine.precision import full_precision
from .config import unified_weights

MASK_FLOOR = -100.0  # TernaryBERT zeroes score entries at or below this (the additive padding mask)
PROB_FLOOR = 1e-8


@full_precision
def soft_cross_entropy(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """``mean_b[-Σ_c softmax(z^T/T)_c · log_softmax(z^S/T)_c]`` (logits KD, spec §2.1)."""
    target = F.softmax(teacher_logits / temperature, dim=-1)
    return -(target * F.log_softmax(student_logits / temperature, dim=-1)).sum(-1).mean()


@full_precision
def prediction_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Soft cross-entropy for classification, MSE for a single regression output."""
    if student_logits.size(-1) == 1:
        return F.mse_loss(student_logits, teacher_logits)
    return soft_cross_entropy(student_logits, teacher_logits, temperature)


@full_precision
def layerwise_mse(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """``Σ_l MSE(S_l, T_l)``, unmasked: hidden states (L_rep) and attention outputs (Eq. 7)."""
    _same_length(student, teacher)
    return torch.stack([F.mse_loss(s, t) for s, t in zip(student, teacher)]).sum()


@full_precision
def attention_score_mse(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """TernaryBERT Eq. 5: ``Σ_l MSE(AS^S_l, AS^T_l)`` with entries ≤ −100 (the mask) set to 0."""

    def unmask(scores: torch.Tensor) -> torch.Tensor:
        return torch.where(scores <= MASK_FLOOR, torch.zeros_like(scores), scores)

    return layerwise_mse([unmask(s) for s in student], [unmask(t) for t in teacher])


@full_precision
def attention_map_kl(
    student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 6 with the code's normalisation: ``Σ_l mean_{b,h} (1/s_b) Σ_{t,j<s_b} p^T (log p^T − log p^S)``.

    ``student``/``teacher`` are per-layer probabilities ``(B, H, n, n)``; ``attention_mask`` is the
    ``(B, n)`` 0/1 padding mask (``None``: every token is real). Probabilities are clamped at 1e-8.
    """
    _same_length(student, teacher)
    batch, _, n, _ = teacher[0].shape
    mask = (
        torch.ones(batch, n, device=teacher[0].device)
        if attention_mask is None
        else attention_mask.to(teacher[0].dtype)
    )
    pair_mask = mask[:, None, :, None] * mask[:, None, None, :]
    lengths = mask.sum(-1).clamp_min(1.0)[:, None]
    per_layer = []
    for s, t in zip(student, teacher):
        s, t = s.clamp_min(PROB_FLOOR), t.clamp_min(PROB_FLOOR)
        kl = (t * (t.log() - s.log()) * pair_mask).sum((-2, -1)) / lengths
        per_layer.append(kl.mean())
    return torch.stack(per_layer).sum()


@full_precision
def probs_at_temperature(scores: torch.Tensor, tau: float) -> torch.Tensor:
    """``softmax(AS/τ)``: the map-loss temperature of Table 1 (placement of τ is [U]; spec §2.9)."""
    return F.softmax(scores / tau, dim=-1)


UnifiedForm = Literal["sm1", "sm2"]


def unified_map_output(
    map_loss: torch.Tensor, output_loss: torch.Tensor, beta: float, form: UnifiedForm = "sm1"
) -> torch.Tensor:
    """The unified loss of Eq. 8 from an attention-map loss and an attention-output loss."""
    w = unified_weights(form, beta)
    return w["map"] * map_loss + w["output"] * output_loss


@full_precision
def ground_truth_ce(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Optional hard-label term (off in every reference run script)."""
    if student_logits.size(-1) == 1:
        return F.mse_loss(student_logits.squeeze(-1), labels.to(student_logits.dtype))
    return F.cross_entropy(student_logits, labels)


def _same_length(student: Sequence, teacher: Sequence) -> None:
    if len(student) != len(teacher) or not student:
        raise ValueError(
            f"need the same non-zero number of student and teacher layers, got {len(student)} and {len(teacher)}"
        )
