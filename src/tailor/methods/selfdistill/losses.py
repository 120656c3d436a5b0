"""The paper's losses, written by hand because no library has them (Lee et al., ICLR 2023).

* ``masked_lm_loss`` / ``masked_patch_loss``: L_MAE (Eq. 2), each example's loss averaged over its
  own masked positions (the z_k / Z weights), then averaged over examples.
* ``distill_loss``: L_Distill (Eq. 3), the squared L2 distance **summed** over feature dimensions
  and **averaged** over examples, teacher under stop-gradient.
* ``prediction_kl`` / ``prediction_mse``: the Prediction-Matching ablation (Table 3).

Each runs in fp32 also under bf16/fp16 autocast (``full_precision``); ViT-MAE's own loss inside
transformers is fp32 already (bf16 logits minus an fp32 target promote to fp32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...engine.precision import full_precision


def _mean_over_examples(per_position: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_k (z_k / Z) ℓ_k per example, then the mean over examples that have Z > 0."""
    mask = mask.to(per_position.dtype)
    counts = mask.sum(dim=1)
    has_mask = counts > 0
    per_example = (per_position * mask).sum(dim=1)[has_mask] / counts[has_mask]
    return per_example.mean()


@full_precision
def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 2 for text: −Σ_k (z_k/Z) log p(x_k | x̂), averaged over examples; labels = -100 off the mask."""
    mask = labels != -100
    nll = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
    return _mean_over_examples(nll, mask)


@full_precision
def masked_lm_loss_at(masked_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``masked_lm_loss`` from logits computed only at the masked positions (``labels != -100``, row-major).

    Same value, but the vocabulary projection runs on ~γ of the tokens instead of all of them.
    """
    mask = labels != -100
    nll = torch.zeros(labels.shape, dtype=masked_logits.dtype, device=masked_logits.device)
    nll = nll.masked_scatter(mask, F.cross_entropy(masked_logits, labels[mask], reduction="none"))
    return _mean_over_examples(nll, mask)


def normalise_patches(target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """MAE's ``norm_pix_loss`` target: each patch standardised by its own mean and (unbiased) variance."""
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps) ** 0.5


@full_precision
def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 2 for images: the Gaussian likelihood reduces to pixel MSE on masked patches.

    Per patch the squared error is averaged over its pixels (the constant 1/m that the MAE code and
    the authors' code use; it only rescales σ), then Σ_k (z_k/Z)·, then the mean over examples.
    """
    per_patch = (pred - target).pow(2).mean(dim=-1)
    return _mean_over_examples(per_patch, mask)


@full_precision
def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L_Distill = (1/B) Σ_j ||f_θ(x_j) − StopGrad(f_θ0(x_j))||²₂.

    ``student``/``teacher`` are (B, ...) representations; every non-batch dimension is a feature
    dimension and is summed (for token matrices this is the squared Frobenius norm, Appendix C's
    f_θ(x) ∈ R^{h×K}; padded tokens must already be zeroed in both).
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"student and teacher representations differ in shape: {tuple(student.shape)} vs {tuple(teacher.shape)}"
        )
    diff = student - teacher.detach()
    return diff.pow(2).flatten(1).sum(dim=1).mean()


@full_precision
def prediction_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Prediction-Matching (text): Σ_t KL(p_θ0(x_t|x̂) ‖ p_θ(x_t|x̂)) over valid positions, mean over examples."""
    teacher_logp = F.log_softmax(teacher_logits.detach(), dim=-1)
    student_logp = F.log_softmax(student_logits, dim=-1)
    kl = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(dim=-1)
    return (kl * valid.to(kl.dtype)).sum(dim=1).mean()


def prediction_mse(student_pred: torch.Tensor, teacher_pred: torch.Tensor) -> torch.Tensor:
    """Prediction-Matching (images): ||g_φ∘f_θ(x̂) − g_φ0∘f_θ0(x̂)||²₂ summed over patches and pixels,
    mean over examples."""
    return distill_loss(student_pred, teacher_pred)
