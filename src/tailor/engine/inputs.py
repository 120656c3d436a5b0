"""Turn task data into what a model eats: tokenized text or normalised pixel tensors, plus a collator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConfigError
from ..zoo import models as zoo
from ..zoo.data import DataConfig, TaskData
from ..zoo.models import ImageSpec


@dataclass
class ModelInputs:
    train: "datasets.Dataset"  # noqa: F821
    validation: "datasets.Dataset"  # noqa: F821
    test: "datasets.Dataset"  # noqa: F821
    collator: Callable[[list[dict]], dict[str, Tensor]]
    num_labels: int
    modality: str
    tokenizer: object | None = None
    image: ImageSpec | None = None


def to_pixels(images: np.ndarray | Tensor, size: int) -> Tensor:
    """uint8 images [B,H,W] or [B,H,W,C] -> float [B,3,size,size] in [0, 1] (grey is replicated)."""
    x = torch.as_tensor(np.asarray(images)).float() / 255.0
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous()


class Normalize(nn.Module):
    """Per-channel normalisation as a module, for attacks that work in [0, 1] pixel space."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class ImageCollator:
    """Batches uint8 images into `pixel_values` (normalised unless normalize=False) and `labels` (when the
    rows have them: an unlabeled corpus has none). Images of different sizes are resized one by one."""

    def __init__(self, spec: ImageSpec, normalize: bool = True):
        self.spec = spec
        self.norm = Normalize(spec.mean, spec.std) if normalize else None

    def __call__(self, rows: list[dict]) -> dict[str, Tensor]:
        images = [np.asarray(r["image"], dtype=np.uint8) for r in rows]
        if len({im.shape for im in images}) == 1:
            x = to_pixels(np.stack(images), self.spec.size)
        else:  # a corpus folder of photos of any size
            x = torch.cat([to_pixels(im[None], self.spec.size) for im in images])
        if self.norm is not None:
            x = self.norm(x)
        out = {"pixel_values": x}
        if "label" in rows[0]:
            out["labels"] = torch.tensor([int(r["label"]) for r in rows])
        return out


def prepare(task: TaskData, model_name: str, cfg: DataConfig, *, normalize: bool = True) -> ModelInputs:
    """Tokenize text (truncated to cfg.max_length, padded per batch) or set up pixel batching."""
    takes = zoo.model_modality(model_name)
    if takes is not None and takes != task.modality:  # else: a tokenizer error about sentencepiece, say
        raise ConfigError(
            f"data '{cfg.name}' is {task.modality} but model '{model_name}' takes {takes} input; "
            f"use a {task.modality} model (`tailor models` lists each one's modality)"
        )
    if task.modality == "image":
        spec = zoo.image_spec(model_name)
        if cfg.image_size:
            spec = ImageSpec(cfg.image_size, spec.mean, spec.std)
        splits = [s.with_format("numpy") for s in (task.train, task.validation, task.test)]
        return ModelInputs(*splits, ImageCollator(spec, normalize), task.num_labels, "image", image=spec)

    from transformers import DataCollatorWithPadding

    tok = zoo.tokenizer(model_name)
    if tok.pad_token is None:  # decoder tokenizers (GPT-2, Llama) often have none
        tok.pad_token = tok.eos_token

    def encode(batch):
        out = tokenize(tok, batch, cfg.max_length)
        out["labels"] = batch["label"]
        return out

    splits = [
        s.map(encode, batched=True, remove_columns=s.column_names, desc="tokenize")
        for s in (task.train, task.validation, task.test)
    ]
    return ModelInputs(
        *splits, DataCollatorWithPadding(tok, return_tensors="pt"), task.num_labels, "text", tokenizer=tok
    )


def tokenize(tok, batch: dict, max_length: int) -> dict:
    """The one text encoding of every split and corpus: truncated to max_length, padded per batch later."""
    return tok(batch["text"], truncation=True, max_length=max_length)


STREAM_BATCH = 64  # examples tokenized per call on the stream: what is held beside the shuffle buffer


def stream_inputs(corpus, inputs: ModelInputs, max_length: int, seed: int = 0):
    """An unlabeled corpus (`tailor.zoo.corpus.CorpusConfig`) streamed as the model eats it: tokenized
    like the task's splits (text), or as uint8 RGB arrays for `inputs.collator` (images), on the fly."""
    from ..zoo.corpus import stream

    ds = stream(corpus, inputs.modality, seed=seed)
    if inputs.modality == "text":
        return ds.map(
            lambda batch: tokenize(inputs.tokenizer, batch, max_length),
            batched=True,
            batch_size=STREAM_BATCH,
            remove_columns=["text"],
        )
    return ds.map(lambda row: {"image": np.array(row["image"].convert("RGB"), dtype=np.uint8)})
