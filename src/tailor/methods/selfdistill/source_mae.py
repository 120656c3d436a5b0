"""A ViT-MAE that tailor pre-trains itself: the image reproduction's stand-in for an MAE checkpoint.

The paper further pre-trains with the objective the model was pre-trained with (MAE, with MAE's own
decoder), and warns that a different objective hurts. No MAE checkpoint installs offline, and
`dinov2-s` was not pre-trained with masked reconstruction, so further pre-training it means learning a
new pixel decoder while the encoder moves. The stand-in: a small `ViTMAEForPreTraining` (transformers'
masking, decoder and loss) pre-trained from a seeded random init by `further_pretrain` on one image
domain, whose encoder *and* decoder are then adapted to another. Written here: only the config of
that model and the recipe that pre-trains it; the training is the pipeline's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...pipeline import run_recipe
from ...recipe import parse_recipe


@dataclass(frozen=True)
class SourceMAE:
    """A ViT-MAE pre-trained on ``data`` (read at the model's ``image_size``) with ``pretrain``
    (further_pretrain settings), seed 0."""

    name: str
    data: dict
    pretrain: dict
    image_size: int = 28
    patch_size: int = 4
    hidden_size: int = 192
    layers: int = 6
    heads: int = 3
    decoder_hidden_size: int = 128
    decoder_layers: int = 2

    @property
    def patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def forward_flops(self) -> float:
        """One encoder forward over one image, ~2 × parameters (12·d² a layer) × tokens (for --plan)."""
        return 2 * 12 * self.layers * self.hidden_size**2 * (self.patches + 1)

    def recipe(self, model: str) -> dict:
        return {
            "name": f"sd-source-{self.name}",
            "model": model,
            "data": {**self.data, "image_size": self.image_size},  # the model's size, whatever data says
            "seeds": [0],
            "stages": [{"further_pretrain": self.pretrain}],
        }

    def init_folder(self, out: Path) -> Path:
        return Path(out) / f"{self.name}-init"


def _shape(source: SourceMAE) -> dict:
    """The ViTMAEConfig fields this model sets (the rest are transformers' defaults)."""
    return {
        "image_size": source.image_size,
        "patch_size": source.patch_size,
        "hidden_size": source.hidden_size,
        "num_hidden_layers": source.layers,
        "num_attention_heads": source.heads,
        "intermediate_size": 4 * source.hidden_size,
        "decoder_hidden_size": source.decoder_hidden_size,
        "decoder_num_hidden_layers": source.decoder_layers,
        "decoder_num_attention_heads": max(1, source.decoder_hidden_size // 32),
        "decoder_intermediate_size": 4 * source.decoder_hidden_size,
    }


def build_init(source: SourceMAE, folder: Path) -> Path:
    """A seeded random ViT-MAE (encoder + decoder) and its image processor (mean/std 0.5), saved once;
    built again when the saved one has another shape (then its fingerprint, and every run after it, change).
    """
    import torch
    from transformers import ViTImageProcessor, ViTMAEConfig, ViTMAEForPreTraining

    shape = _shape(source)
    if (folder / "config.json").is_file():
        saved = ViTMAEConfig.from_pretrained(folder)
        if all(getattr(saved, k) == v for k, v in shape.items()):
            return folder
    config = ViTMAEConfig(**shape)
    with torch.random.fork_rng():  # seeded, without resetting the caller's random state
        torch.manual_seed(0)
        ViTMAEForPreTraining(config).save_pretrained(folder)
    size = {"height": source.image_size, "width": source.image_size}
    ViTImageProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(folder)
    return folder


def pretrained(source: SourceMAE, out: Path, runs: Path) -> Path:
    """Pre-train the source model (a finished run is reused) and return its artifact folder."""
    raw = source.recipe(str(build_init(source, source.init_folder(out))))
    return run_recipe(parse_recipe(raw, raw["name"]), runs).path / "seed-0" / "01-further_pretrain" / "model"
