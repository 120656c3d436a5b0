"""Classification metrics and a batched prediction loop."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, matthews_corrcoef
from torch import nn

from ..dist import unwrap
from .losses import model_inputs
from .precision import autocast, resolve, resolve_logged


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    pred = logits.argmax(-1)
    loss = F.cross_entropy(torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(labels)).item()
    return {
        "accuracy": float((pred == labels).mean()),
        "macro_f1": float(f1_score(labels, pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(labels, pred, average="micro", zero_division=0)),
        "mcc": float(matthews_corrcoef(labels, pred)),
        "loss": float(loss),
        "n": int(len(labels)),
    }


@torch.no_grad()
def predict(
    model: nn.Module, dataset, collator: Callable, batch_size: int = 64, precision: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (fp32) and labels over a dataset, in order, with the model in eval mode (mode restored after).

    `precision` (auto/fp32/bf16/fp16) runs the forward under `torch.autocast` when mixed.
    """
    model = unwrap(model)
    device = next(model.parameters()).device
    choice = resolve(precision, device)
    was_training = model.training
    model.eval()
    logits, labels = [], []
    try:
        for start in range(0, len(dataset), batch_size):
            batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(choice, device):
                out = model(**model_inputs(batch)).logits
            logits.append(out.float().cpu())
            labels.append(batch["labels"].cpu())
    finally:
        model.train(was_training)
    return torch.cat(logits).numpy(), torch.cat(labels).numpy()


def evaluate(
    model: nn.Module,
    inputs,
    batch_size: int = 64,
    splits: Iterable[str] = ("validation", "test"),
    precision: str = "auto",
) -> dict:
    """{split: metrics} for a classifier on prepared `ModelInputs`; `precision` as in `predict` (logged)."""
    choice = resolve_logged(precision, "evaluation", next(unwrap(model).parameters()).device)
    return {
        s: classification_metrics(*predict(model, getattr(inputs, s), inputs.collator, batch_size, choice.name))
        for s in splits
    }
