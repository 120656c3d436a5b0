"""Masked patch modelling for ViTs that have no MAE decoder (e.g. a ``transformers.Dinov2Model``).

The paper's vision path is MAE (ViTMAEForPreTraining, used natively elsewhere). For a plain ViT
encoder we do what SimMIM does, because nothing in transformers ships it for Dinov2: masked patches
are replaced by the encoder's learnable mask token (``bool_masked_pos``), the encoder sees the whole
sequence, and a light decoder (LayerNorm + linear, or a small MLP) regresses each masked patch's
pixels. The decoder (and the mask token, which a plain ``ViTModel`` checkpoint drops) is saved
next to the encoder's Hugging Face folder as a safetensors sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ...files import atomic_save_safetensors, atomic_write_text
from .losses import masked_patch_loss, normalise_patches
from .masking import mask_patches, patchify

DECODER_WEIGHTS = "mim_decoder.safetensors"
DECODER_CONFIG = "mim_decoder.json"


class PixelDecoder(nn.Module):
    """Maps each token's hidden state to its patch's p*p*C pixels (depth 1: linear, depth 2: MLP)."""

    def __init__(self, hidden_size: int, patch_dim: int, depth: int = 1):
        super().__init__()
        if depth not in (1, 2):
            raise ValueError(f"decoder depth must be 1 or 2, got {depth}")
        layers: list[nn.Module] = [nn.LayerNorm(hidden_size)]
        if depth == 2:
            layers += [nn.Linear(hidden_size, hidden_size), nn.GELU()]
        layers.append(nn.Linear(hidden_size, patch_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden)


class MaskedPatchModel(nn.Module):
    """Encoder (ViT with a mask token) + pixel decoder; ``forward`` returns the masked-patch loss."""

    def __init__(
        self,
        encoder: nn.Module,
        *,
        mask_ratio: float = 0.75,
        mask_mode: str = "shuffle",
        norm_pix_loss: bool = True,
        decoder_depth: int = 1,
        decoder: PixelDecoder | None = None,
    ):
        super().__init__()
        cfg = encoder.config
        ensure_mask_token(encoder)
        self.encoder = encoder
        self.patch_size = int(cfg.patch_size)
        self.num_channels = int(cfg.num_channels)
        self.mask_ratio, self.mask_mode, self.norm_pix_loss = mask_ratio, mask_mode, norm_pix_loss
        self.decoder_depth = decoder_depth
        patch_dim = self.patch_size**2 * self.num_channels
        self.decoder = decoder or PixelDecoder(int(cfg.hidden_size), patch_dim, decoder_depth)

    @property
    def base_model(self) -> nn.Module:
        """The encoder f_θ (the part distilled and later fine-tuned), as on a transformers model."""
        return self.encoder

    def _crop(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # the patch convolution drops the remainder rows/columns; the target must drop them too
        h, w = pixel_values.shape[-2:]
        return pixel_values[..., : h - h % self.patch_size, : w - w % self.patch_size]

    def reconstruct(self, pixel_values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """g_φ∘f_θ(x̂): predicted pixels for every patch (B, K, p*p*C) of the masked input."""
        hidden = self.encoder(pixel_values=pixel_values, bool_masked_pos=mask).last_hidden_state
        num_patches = mask.shape[1]
        return self.decoder(hidden[:, -num_patches:])  # drop CLS (and register) tokens

    def sample_mask(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h, w = pixel_values.shape[-2:]
        k = (h // self.patch_size) * (w // self.patch_size)
        return mask_patches(
            pixel_values.shape[0],
            k,
            self.mask_ratio,
            mode=self.mask_mode,
            device=pixel_values.device,
            generator=generator,
        )

    def target(self, pixel_values: torch.Tensor) -> torch.Tensor:
        target = patchify(self._crop(pixel_values), self.patch_size)
        return normalise_patches(target) if self.norm_pix_loss else target

    def forward(
        self, pixel_values: torch.Tensor, mask: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (loss, predicted patches, mask) for a masked view of ``pixel_values``."""
        pixel_values = self._crop(pixel_values)
        mask = self.sample_mask(pixel_values, generator) if mask is None else mask
        pred = self.reconstruct(pixel_values, mask)
        return masked_patch_loss(pred, self.target(pixel_values), mask), pred, mask

    def decoder_settings(self) -> dict:
        return {
            "mask_ratio": self.mask_ratio,
            "mask_mode": self.mask_mode,
            "norm_pix_loss": self.norm_pix_loss,
            "decoder_depth": self.decoder_depth,
        }

    def save_decoder(self, folder: Path) -> None:
        """Write the decoder sidecar (safetensors + its settings) next to the encoder's HF folder."""
        folder = Path(folder)
        tensors = {f"decoder.{k}": v for k, v in self.decoder.state_dict().items()}
        tensors["mask_token"] = self.encoder.embeddings.mask_token
        atomic_save_safetensors({k: v.detach() for k, v in tensors.items()}, folder / DECODER_WEIGHTS)
        atomic_write_text(folder / DECODER_CONFIG, json.dumps(self.decoder_settings(), indent=2))


def ensure_mask_token(encoder: nn.Module) -> None:
    """Give a ViT encoder a learnable mask token if it was built without one (``ViTModel`` default)."""
    embeddings = encoder.embeddings
    if not hasattr(embeddings, "mask_token"):
        raise ValueError(f"{type(encoder).__name__} does not support masked patches (no embeddings.mask_token)")
    if embeddings.mask_token is None:
        embeddings.mask_token = nn.Parameter(torch.zeros(1, 1, encoder.config.hidden_size))


def has_decoder(folder: Path) -> bool:
    return (Path(folder) / DECODER_WEIGHTS).is_file()


def load_masked_patch_model(encoder: nn.Module, folder: Path | None, **settings) -> MaskedPatchModel:
    """Wrap ``encoder``; restore the decoder (and its settings) from ``folder``'s sidecar if present."""
    if folder is None or not has_decoder(folder):
        return MaskedPatchModel(encoder, **settings)
    saved = json.loads((Path(folder) / DECODER_CONFIG).read_text())
    model = MaskedPatchModel(encoder, **{**saved, **settings, "decoder_depth": saved["decoder_depth"]})
    tensors = load_file(str(Path(folder) / DECODER_WEIGHTS))
    model.decoder.load_state_dict({k[len("decoder.") :]: v for k, v in tensors.items() if k.startswith("decoder.")})
    with torch.no_grad():
        token = encoder.embeddings.mask_token
        token.copy_(tensors["mask_token"].reshape(token.shape))
    return model
