import pytest
import torch

from tailor.methods.selfdistill.masking import bernoulli_positions, mask_patches, mask_tokens, patchify


def test_bernoulli_rate_and_nonempty_rows():
    g = torch.Generator().manual_seed(0)
    candidates = torch.ones(2000, 20, dtype=torch.bool)
    candidates[:, :2] = False
    mask = bernoulli_positions(candidates, 0.15, g)
    assert not mask[:, :2].any()
    assert mask.any(dim=1).all()  # Z > 0 for every example
    assert mask[:, 2:].float().mean().item() == pytest.approx(0.15, abs=0.01)


def test_single_candidate_rows_are_forced():
    candidates = torch.zeros(5, 6, dtype=torch.bool)
    candidates[:, 4] = True
    mask = bernoulli_positions(candidates, 0.01, torch.Generator().manual_seed(0))
    assert torch.equal(mask, candidates)


def test_mask_tokens_80_10_10_and_specials_untouched():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (400, 50), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    corrupted, labels = mask_tokens(ids, special, mask_token_id=3, vocab_size=1000, prob=0.3, generator=g)
    selected = labels != -100
    assert not selected[:, 0].any() and torch.equal(corrupted[:, 0], ids[:, 0])
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(corrupted[~selected], ids[~selected])
    frac_mask = (corrupted[selected] == 3).float().mean().item()
    frac_same = (corrupted[selected] == ids[selected]).float().mean().item()
    assert frac_mask == pytest.approx(0.8, abs=0.02)
    assert frac_same == pytest.approx(0.1, abs=0.02)


def test_mask_tokens_rejects_bad_replacement_probs():
    with pytest.raises(ValueError, match="mask_replace_prob"):
        mask_tokens(
            torch.ones(1, 3, dtype=torch.long),
            torch.zeros(1, 3, dtype=torch.bool),
            mask_token_id=0,
            vocab_size=5,
            mask_replace_prob=0.9,
            random_replace_prob=0.2,
        )


def test_shuffle_masks_exact_count_and_bernoulli_mode():
    mask = mask_patches(8, 16, 0.75, mode="shuffle", generator=torch.Generator().manual_seed(0))
    assert (mask.sum(dim=1) == 12).all()
    mask = mask_patches(8, 16, 0.5, mode="bernoulli", generator=torch.Generator().manual_seed(0))
    assert mask.any(dim=1).all() and not (mask.sum(dim=1) == 8).all()
    with pytest.raises(ValueError, match="valid"):
        mask_patches(1, 4, 0.5, mode="block")


def test_patchify_matches_vitmae(tiny_vitmae, image_batch):
    pixels = image_batch["pixel_values"]
    assert torch.equal(patchify(pixels, 4), tiny_vitmae.patchify(pixels))
