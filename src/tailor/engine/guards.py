"""Stop (or skip) training on a non-finite loss or gradient, instead of logging a silent 0.0.

transformers.Trainer hides a NaN/inf loss (`logging_nan_inf_filter` replaces it with the running
mean) and then steps the optimizer on NaN gradients, so a diverged run ends with NaN weights, a
small reported loss and exit 0. `NonFiniteGuard` checks the gradients just before every optimizer
step (the loss is checked by the trainer's `compute_loss`): with `non_finite: stop` it raises
`NonFiniteError` naming the step and the likely causes; with `non_finite: skip` it drops that
step's gradients (torch optimizers skip parameters whose `.grad` is None, so neither the Adam
moments nor weight decay move) and counts it.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback

from ..errors import NonFiniteError

__all__ = ["NonFiniteError", "NonFiniteGuard", "non_finite_message"]


def non_finite_message(what: str, step: int, lr: float) -> str:
    return (
        f"non-finite {what} (NaN or inf) at optimisation step {step}: training stopped, no results written. "
        f"Likely causes: a learning rate too high (lr={lr:g}; try 10x lower), or reduced precision "
        "overflowing (use precision fp32). To skip such batches instead, set non_finite: skip in the stage."
    )


class NonFiniteGuard(TrainerCallback):
    """Before each optimizer step: stop, or drop the step, when any gradient is NaN/inf."""

    def __init__(self, policy: str = "stop"):
        self.policy = policy
        self.skipped_steps = 0

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads or torch.isfinite(torch.stack(torch._foreach_norm(grads))).all():
            return
        if self.policy == "stop":
            raise NonFiniteError(non_finite_message("gradient", state.global_step + 1, args.learning_rate))
        self.skipped_steps += 1
        for p in model.parameters():
            p.grad = None
