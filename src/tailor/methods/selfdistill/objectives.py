"""Engine objectives for further pre-training (Algorithm 2) and self-distillation (Algorithm 1).

Each implements the engine's Objective protocol: ``weights`` and ``terms(model, batch, teacher)``
returning unweighted named losses. Masking happens here (not in the collator) so one step can use
the masked view x̂ for L_MAE and the unmasked x for L_Distill, as Algorithm 1 does.

Three masked auto-encoding back-ends share one small interface (``sample`` a corruption, ``predict``
under it, so a teacher can be run on the *same* corruption for Prediction-Matching):
``MaskedLM`` (BERT/RoBERTa MLM heads), ``NativeMAE`` (``ViTMAEForPreTraining``) and ``MaskedPatches``
(``mim.MaskedPatchModel`` for other ViTs).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ...config import ConfigError
from ...engine.losses import weight_l2, weight_mars
from .losses import distill_loss, masked_lm_loss, masked_lm_loss_at, prediction_kl, prediction_mse
from .masking import mask_tokens

TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
REPRESENTATIONS = ("cls", "mean", "tokens")
MATCHES = ("representation", "prediction", "weight_l2", "weight_mars")


def _text_inputs(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: batch[k] for k in TEXT_KEYS if k in batch}


class MaskedLM:
    """Masked-LM corruption + per-example masked-position cross-entropy (Eq. 2, text)."""

    def __init__(
        self,
        *,
        mask_token_id: int,
        special_ids: list[int],
        vocab_size: int,
        prob: float = 0.15,
        mask_replace_prob: float = 0.8,
        random_replace_prob: float = 0.1,
    ):
        self.mask_token_id, self.vocab_size = mask_token_id, vocab_size
        self.special_ids = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
        self.prob, self.mask_replace_prob, self.random_replace_prob = prob, mask_replace_prob, random_replace_prob

    def valid(self, batch) -> torch.Tensor:
        ids = batch["input_ids"]
        attention = batch.get("attention_mask", torch.ones_like(ids))
        return attention.bool()

    def sample(self, model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        ids = batch["input_ids"]
        special = ~self.valid(batch) | torch.isin(ids, self.special_ids.to(ids.device))
        if bool(special.all()):  # else L_MAE is a mean over no position: NaN, blamed on the learning rate
            raise ConfigError(
                "masked LM: no token of a batch can be masked (every one is padding, a special token or [UNK]); "
                "check that the tokenizer is the model's own and that the texts are not empty"
            )
        return mask_tokens(
            ids,
            special,
            mask_token_id=self.mask_token_id,
            vocab_size=self.vocab_size,
            prob=self.prob,
            mask_replace_prob=self.mask_replace_prob,
            random_replace_prob=self.random_replace_prob,
        )

    def predict(self, model: nn.Module, batch, corruption) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and logits at every position (what Prediction-Matching compares)."""
        masked_ids, labels = corruption
        logits = model(**{**_text_inputs(batch), "input_ids": masked_ids}).logits
        return masked_lm_loss(logits, labels), logits

    def loss(self, model: nn.Module, batch, corruption) -> torch.Tensor:
        """L_MAE with the vocabulary projection run on the masked positions only (it dominates the cost)."""
        masked_ids, labels = corruption
        hidden = model.base_model(**{**_text_inputs(batch), "input_ids": masked_ids}).last_hidden_state
        return masked_lm_loss_at(mlm_head(model)(hidden[labels != -100]), labels)

    def match(self, student_pred, teacher_pred, batch) -> torch.Tensor:
        return prediction_kl(student_pred, teacher_pred, self.valid(batch))


def mlm_head(model: nn.Module) -> nn.Module:
    """The masked-LM head module of a transformers *ForMaskedLM model (BERT: ``cls``, RoBERTa: ``lm_head``)."""
    for name in ("cls", "lm_head"):
        if isinstance(getattr(model, name, None), nn.Module):
            return getattr(model, name)
    raise ValueError(f"{type(model).__name__} has no masked-LM head named 'cls' or 'lm_head'")


class NativeMAE:
    """``ViTMAEForPreTraining``'s own masking, decoder and loss (the paper's and authors' vision path).

    HF MAE masks exactly ``config.mask_ratio`` of the patches by random shuffle, so every example has
    the same Z and its batch-level normalisation equals Eq. 2's per-example one.
    """

    def sample(self, model: nn.Module, batch) -> torch.Tensor:
        pixels = batch["pixel_values"]
        num_patches = model.vit.embeddings.patch_embeddings.num_patches
        return torch.rand(pixels.shape[0], num_patches, device=pixels.device)

    def predict(self, model: nn.Module, batch, noise) -> tuple[torch.Tensor, torch.Tensor]:
        out = model(pixel_values=batch["pixel_values"], noise=noise)
        return out.loss, out.logits

    def loss(self, model: nn.Module, batch, corruption) -> torch.Tensor:
        return self.predict(model, batch, corruption)[0]

    def match(self, student_pred, teacher_pred, batch) -> torch.Tensor:
        return prediction_mse(student_pred, teacher_pred)


class MaskedPatches:
    """Mask-token masked patch modelling for ViTs without an MAE decoder (``mim.MaskedPatchModel``)."""

    def sample(self, model: nn.Module, batch) -> torch.Tensor:
        return model.sample_mask(model._crop(batch["pixel_values"]))

    def predict(self, model: nn.Module, batch, mask) -> tuple[torch.Tensor, torch.Tensor]:
        loss, pred, _ = model(batch["pixel_values"], mask=mask)
        return loss, pred

    def loss(self, model: nn.Module, batch, corruption) -> torch.Tensor:
        return self.predict(model, batch, corruption)[0]

    def match(self, student_pred, teacher_pred, batch) -> torch.Tensor:
        return prediction_mse(student_pred, teacher_pred)


@contextmanager
def _mae_without_masking(encoder: nn.Module):
    """Let a ``ViTMAEModel`` see every patch in order (the paper's unmasked f_θ(x)); restores its ratio."""
    ratio = encoder.config.mask_ratio
    encoder.config.mask_ratio = 0.0
    try:
        yield
    finally:
        encoder.config.mask_ratio = ratio


def unmasked_hidden(encoder: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-layer hidden states (after the final LayerNorm) of the unmasked input, and a validity mask."""
    if "pixel_values" in batch:
        pixels = batch["pixel_values"]
        if type(encoder).__name__ == "ViTMAEModel":
            num_patches = encoder.embeddings.patch_embeddings.num_patches
            in_order = torch.arange(num_patches, device=pixels.device, dtype=torch.float).expand(pixels.shape[0], -1)
            with _mae_without_masking(encoder):
                hidden = encoder(pixel_values=pixels, noise=in_order).last_hidden_state
        else:
            hidden = encoder(pixel_values=pixels).last_hidden_state
        return hidden, torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
    hidden = encoder(**_text_inputs(batch)).last_hidden_state
    return hidden, batch.get("attention_mask", torch.ones(hidden.shape[:2], device=hidden.device)).bool()


def represent(hidden: torch.Tensor, valid: torch.Tensor, kind: str) -> torch.Tensor:
    """f_θ(x) as distilled: the first ([CLS]) token, the mean over valid tokens, or all tokens (pads zeroed)."""
    if kind == "cls":
        return hidden[:, 0]
    weights = valid.to(hidden.dtype).unsqueeze(-1)
    if kind == "mean":
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    if kind == "tokens":
        return hidden * weights
    raise ValueError(f"unknown representation {kind!r}; valid: {', '.join(REPRESENTATIONS)}")


class MaskedAutoEncodingObjective:
    """L_MAE alone (further pre-training, Algorithm 2; also the MLM-head warm-up)."""

    def __init__(self, mae):
        self.mae = mae
        self.weights = {"mae": 1.0}

    def terms(self, model: nn.Module, batch, teacher: nn.Module | None = None) -> dict[str, torch.Tensor]:
        return {"mae": self.mae.loss(model, batch, self.mae.sample(model, batch))}


class SelfDistillObjective:
    """λ·L_MAE + w·L_Distill (Eq. 3), or a Table 3 variant of the distillation term.

    ``match="representation"`` is the paper's method; ``"prediction"`` matches the teacher's
    reconstructions of the same masked input (MSE for images, token-wise KL for text);
    ``"weight_l2"``/``"weight_mars"`` pull the student encoder's weights to the teacher's.
    ``mae_weight=0`` is the "w/o L_MAE" ablation (the masked pass is then skipped).
    L_Distill involves only the encoder, so the decoder/MLM head gets gradient from L_MAE alone.
    """

    def __init__(
        self,
        mae,
        *,
        representation: str = "cls",
        match: str = "representation",
        mae_weight: float = 1.0,
        distill_weight: float = 1.0,
    ):
        if representation not in REPRESENTATIONS:
            raise ValueError(f"unknown representation {representation!r}; valid: {', '.join(REPRESENTATIONS)}")
        if match not in MATCHES:
            raise ValueError(f"unknown match {match!r}; valid: {', '.join(MATCHES)}")
        if match == "prediction" and mae_weight <= 0:
            raise ValueError("match='prediction' runs the masked pass anyway; keep mae_weight > 0")
        self.mae, self.representation, self.match = mae, representation, match
        self.weights = {"distill": distill_weight, **({"mae": mae_weight} if mae_weight > 0 else {})}

    def terms(self, model: nn.Module, batch, teacher: nn.Module) -> dict[str, torch.Tensor]:
        if teacher is None:
            raise ValueError("self-distillation needs a teacher (the further pre-trained encoder)")
        out: dict[str, torch.Tensor] = {}
        if self.match == "prediction":
            corruption = self.mae.sample(model, batch)
            out["mae"], pred = self.mae.predict(model, batch, corruption)
            with torch.no_grad():
                _, teacher_pred = self.mae.predict(teacher, batch, corruption)
            out["distill"] = self.mae.match(pred, teacher_pred, batch)
            return out
        if "mae" in self.weights:
            out["mae"] = self.mae.loss(model, batch, self.mae.sample(model, batch))
        if self.match == "representation":
            student = represent(*unmasked_hidden(model.base_model, batch), self.representation)
            with torch.no_grad():
                target = represent(*unmasked_hidden(teacher.base_model, batch), self.representation)
            out["distill"] = distill_loss(student, target)
        else:
            reference = {n: p.detach() for n, p in teacher.base_model.named_parameters()}
            distance = weight_l2 if self.match == "weight_l2" else weight_mars
            out["distill"] = distance(model.base_model.named_parameters(), reference)
        return out
