import torch

from tailor.methods.selfdistill.mim import MaskedPatchModel, load_masked_patch_model


def test_masked_patch_model_trains_decoder_and_mask_token(tiny_dinov2, image_batch):
    model = MaskedPatchModel(tiny_dinov2, mask_ratio=0.5, norm_pix_loss=False)
    loss, pred, mask = model(image_batch["pixel_values"])
    assert pred.shape == (3, 16, 4 * 4 * 3) and mask.shape == (3, 16) and (mask.sum(1) == 8).all()
    loss.backward()
    assert tiny_dinov2.embeddings.mask_token.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_crops_images_that_do_not_tile(tiny_dinov2):
    model = MaskedPatchModel(tiny_dinov2)
    loss, pred, _ = model(torch.randn(2, 3, 18, 17))
    assert pred.shape[1] == 16 and torch.isfinite(loss)


def test_decoder_sidecar_roundtrip(tmp_path, tiny_dinov2, image_batch):
    model = MaskedPatchModel(tiny_dinov2, mask_ratio=0.6, decoder_depth=2)
    model.save_decoder(tmp_path)
    restored = load_masked_patch_model(tiny_dinov2, tmp_path)
    assert restored.mask_ratio == 0.6 and restored.decoder_depth == 2
    for (n, a), (_, b) in zip(model.decoder.state_dict().items(), restored.decoder.state_dict().items()):
        assert torch.equal(a, b), n
    fresh = load_masked_patch_model(tiny_dinov2, tmp_path / "none", mask_ratio=0.3)
    assert fresh.mask_ratio == 0.3
