"""Causal-LM fine-tuning on a zoo text corpus: tokenized examples, next-token loss, perplexity.

The engine's inputs are for classification; the decoder experiments (VeRA vs LoRA on a Llama/GPT-2
model) need the texts alone, each truncated to ``max_length`` tokens, padded per batch, with padded
positions excluded from the loss. Perplexity is exp(total NLL / predicted tokens) over a split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...engine.losses import model_inputs
from ...zoo import models as zoo

IGNORE = -100


@dataclass
class LMInputs:
    train: "datasets.Dataset"  # noqa: F821
    validation: "datasets.Dataset"  # noqa: F821
    test: "datasets.Dataset"  # noqa: F821
    collator: "LMCollator"


class LMCollator:
    """Right-pads ``input_ids``; ``labels`` copy them with padding set to -100."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r["input_ids"])] = torch.as_tensor(r["input_ids"])
            mask[i, : len(r["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, IGNORE)}


def prepare_lm(task, model_name: str, max_length: int) -> LMInputs:
    """Tokenize the texts of a text task's splits (labels are dropped) for next-token training."""
    tok = zoo.tokenizer(model_name)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def encode(batch):
        return {"input_ids": tok(batch["text"], truncation=True, max_length=max_length)["input_ids"]}

    splits = [
        s.map(encode, batched=True, remove_columns=s.column_names, desc="tokenize").filter(
            lambda r: len(r["input_ids"]) > 1
        )
        for s in (task.train, task.validation, task.test)
    ]
    return LMInputs(*splits, LMCollator(pad_id))


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token negative log-likelihood and the number of predicted tokens."""
    shifted = labels[:, 1:]
    nll = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), shifted.flatten(), ignore_index=IGNORE, reduction="sum")
    return nll, (shifted != IGNORE).sum()


class NextTokenLoss:
    """Objective: mean next-token cross-entropy over non-padding positions."""

    def __init__(self):
        self.weights = {"lm": 1.0}

    def terms(self, model, batch, teacher=None):
        nll, count = token_nll(model(**model_inputs(batch)).logits, batch["labels"])
        return {"lm": nll / count.clamp(min=1)}


@torch.no_grad()
def perplexity(model, dataset, collator: LMCollator, batch_size: int) -> dict[str, float]:
    """exp(mean NLL per predicted token) over ``dataset``, in eval mode (mode restored after)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(dataset), batch_size):
            batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            nll, n = token_nll(model(**model_inputs(batch)).logits, batch["labels"])
            total, count = total + float(nll), count + int(n)
    finally:
        model.train(was_training)
    mean = total / max(count, 1)
    return {"perplexity": math.exp(mean), "nll": mean, "tokens": count}
