"""Evaluation during training (`eval_every`), checkpoint selection (`select: last | best`) and early
stopping (`patience`), as a Trainer callback.

Trainer's own `eval_strategy` / `load_best_model_at_end` / `EarlyStoppingCallback` need the model's
loss and logits from Trainer's prediction loop and tie the best model to a saved checkpoint of the
same step; tailor's objectives are not a model loss (distillation, adversarial CE), and checkpoints
exist for resume. So the validation split is scored with `metrics.predict` here, the best weights
are kept in `best.safetensors` next to the stage's checkpoints, and early stopping sets Trainer's
own `control.should_training_stop`. The record survives a resume.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.torch import load_model, save_model
from transformers import TrainerCallback

from ..dist import on_main_process
from ..files import atomic_path, atomic_write_text
from .metrics import classification_metrics, predict


class KeepBestOnValidation(TrainerCallback):
    """Score the validation split every ``every`` steps (and at the end); keep the best weights.

    Selecting on validation and reporting the untouched test split is the honest version of "the
    best dev score seen during training". With ``patience`` N, training stops after N evaluations
    in a row without a better score. The best weights and the record live in ``folder``, so a
    resumed run keeps what the interrupted one selected.
    """

    def __init__(
        self,
        model,
        inputs,
        every: int,
        batch_size: int,
        folder: Path,
        precision: str = "auto",
        patience: int | None = None,
        metric: str = "accuracy",
    ):
        self.model, self.inputs, self.every, self.batch_size = model, inputs, every, batch_size
        self.precision, self.patience, self.metric = precision, patience, metric
        self.weights, self.record = Path(folder) / "best.safetensors", Path(folder) / "best.json"
        self.best_score, self.best_step, self.history = -np.inf, 0, []
        if self.record.exists() and self.weights.exists():
            saved = json.loads(self.record.read_text())
            self.best_score, self.best_step, self.history = saved["score"], saved["step"], saved["history"]

    def _score(self, step: int) -> None:
        logits, labels = predict(
            self.model, self.inputs.validation, self.inputs.collator, self.batch_size, self.precision
        )
        score = classification_metrics(logits, labels)[self.metric]
        self.history = [h for h in self.history if h["step"] < step] + [{"step": step, self.metric: score}]
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_step = score, step
        on_main_process(lambda: self._write(improved))

    def _write(self, improved: bool) -> None:
        if improved:
            with atomic_path(self.weights) as tmp:
                save_model(self.model, str(tmp))
        atomic_write_text(
            self.record, json.dumps({"score": self.best_score, "step": self.best_step, "history": self.history})
        )

    def evaluations_without_improvement(self) -> int:
        return sum(h["step"] > self.best_step for h in self.history)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0:
            self._score(state.global_step)
            if self.patience is not None and self.evaluations_without_improvement() >= self.patience:
                control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        if not self.history or self.history[-1]["step"] != state.global_step:
            self._score(state.global_step)

    def restore_best(self) -> dict:
        if self.weights.exists():
            load_model(self.model, str(self.weights))
        return self.summary()

    def summary(self) -> dict:
        return {"best_step": self.best_step, f"best_validation_{self.metric}": self.best_score, "history": self.history}
