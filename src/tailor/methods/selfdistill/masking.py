"""Masks for the masked auto-encoding objective (paper Eq. 2).

Written by hand rather than taken from ``DataCollatorForLanguageModeling`` because self-distillation
needs the *unmasked* and the *masked* view of the same batch in one step (Algorithm 1 feeds x to the
distillation term and x̂ to L_MAE), so masking happens inside the objective, not in the collator,
and because Eq. 2 normalises by each example's own number of masked positions Z, which must never
be 0 (we force one masked position where the Bernoulli draw gave none).
"""

from __future__ import annotations

import torch


def bernoulli_positions(
    candidates: torch.Tensor, prob: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z_k ~ Bernoulli(prob) i.i.d. over the positions where ``candidates`` is True (paper's p_{γ,K}).

    Every example with at least one candidate gets at least one masked position (so Z > 0): where the
    draw selected none, one candidate chosen uniformly at random is masked instead.
    """
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"mask probability must be in (0, 1], got {prob}")
    draw = torch.rand(candidates.shape, generator=generator, device=candidates.device)
    mask = (draw < prob) & candidates
    empty = ~mask.any(dim=1) & candidates.any(dim=1)
    if empty.any():
        # argmax over random scores restricted to candidates picks one uniform candidate per row
        scores = torch.rand(candidates.shape, generator=generator, device=candidates.device)
        pick = torch.where(candidates, scores, torch.full_like(scores, -1.0)).argmax(dim=1)
        forced = torch.zeros_like(mask)
        forced[torch.arange(mask.shape[0], device=mask.device), pick] = True
        mask = torch.where(empty[:, None], forced, mask)
    return mask


def mask_tokens(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    prob: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked-LM corruption of a token batch: returns (x̂, labels) with labels = -100 off the mask.

    Of the selected positions, ``mask_replace_prob`` become [MASK], ``random_replace_prob`` a random
    token and the rest stay unchanged (BERT's 80/10/10; the paper only says "replace by the mask
    token", which is ``mask_replace_prob=1, random_replace_prob=0``). ``special_tokens_mask`` is True
    on [CLS]/[SEP]/padding, which are never selected.
    """
    if mask_replace_prob < 0 or random_replace_prob < 0 or mask_replace_prob + random_replace_prob > 1:
        raise ValueError(
            f"need mask_replace_prob, random_replace_prob >= 0 with sum <= 1, got "
            f"{mask_replace_prob} and {random_replace_prob}"
        )
    selected = bernoulli_positions(~special_tokens_mask.bool(), prob, generator)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    how = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    to_mask = selected & (how < mask_replace_prob)
    to_random = selected & (how >= mask_replace_prob) & (how < mask_replace_prob + random_replace_prob)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device)
    corrupted = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    corrupted = torch.where(to_random, random_ids, corrupted)
    return corrupted, labels


def mask_patches(
    batch_size: int,
    num_patches: int,
    ratio: float,
    *,
    mode: str = "shuffle",
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean (B, K) mask over image patches, True = masked.

    ``mode="bernoulli"``: i.i.d. per patch as the paper writes Eq. 2 (with Z > 0 guaranteed);
    ``mode="shuffle"``: exactly ``round(ratio * K)`` patches per image as in MAE and the authors'
    code (spec §8, §9.8).
    """
    if mode == "bernoulli":
        candidates = torch.ones(batch_size, num_patches, dtype=torch.bool, device=device)
        return bernoulli_positions(candidates, ratio, generator)
    if mode != "shuffle":
        raise ValueError(f"unknown patch mask mode {mode!r}; valid: 'shuffle', 'bernoulli'")
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    num_masked = max(1, round(ratio * num_patches))
    noise = torch.rand(batch_size, num_patches, generator=generator, device=device)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return ranks < num_masked


def patchify(pixel_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, K, p*p*C) in the row-major patch order ViT embeddings use (as ViTMAE's)."""
    b, c, h, w = pixel_values.shape
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not divisible by the patch size {patch_size}")
    x = pixel_values.reshape(b, c, h // patch_size, patch_size, w // patch_size, patch_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch_size) * (w // patch_size), patch_size * patch_size * c)
