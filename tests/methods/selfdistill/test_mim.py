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


def test_plain_vit_gets_a_mask_token_that_the_sidecar_keeps(tmp_path, image_batch):
    from transformers import ViTConfig, ViTModel

    vit = ViTModel(
        ViTConfig(
            image_size=16,
            patch_size=4,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        ),
        add_pooling_layer=False,
    )
    model = MaskedPatchModel(vit)
    model(image_batch["pixel_values"])[0].backward()
    with torch.no_grad():
        vit.embeddings.mask_token.add_(1.0)
    model.save_decoder(tmp_path)
    fresh = ViTModel(vit.config, add_pooling_layer=False)
    restored = load_masked_patch_model(fresh, tmp_path)
    assert torch.equal(restored.encoder.embeddings.mask_token, vit.embeddings.mask_token)
