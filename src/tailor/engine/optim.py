"""The optimizers and the step schedule the engine offers beside transformers' own schedules.

`optimizer: adamw | sgd` builds torch's AdamW or SGD (momentum, Nesterov, coupled L2 weight decay
as in the robust-tickets transfer recipe) over the engine's parameter groups; `scheduler: multistep`
is torch's MultiStepLR with milestones given in epochs or steps. Nothing is re-implemented here:
this module only maps TrainSettings onto the torch classes.
"""

from __future__ import annotations

import math

import torch

from .settings import TrainSettings


def make_optimizer(groups: list[dict], settings: TrainSettings, eps: float = 1e-8) -> torch.optim.Optimizer:
    """torch's AdamW or SGD over parameter groups that carry their own `lr` and `weight_decay`."""
    if settings.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum, nesterov=settings.nesterov)
    return torch.optim.AdamW(groups, lr=settings.lr, betas=settings.adam_betas, eps=eps)


def milestone_steps(settings: TrainSettings, steps_per_epoch: int) -> list[int]:
    """Milestones as optimisation steps (an epoch milestone m is step round(m·steps_per_epoch))."""
    if settings.milestones_in == "steps":
        return [int(m) for m in settings.milestones]
    return [max(1, math.floor(m * steps_per_epoch + 0.5)) for m in settings.milestones]


def multistep_scheduler(
    optimizer: torch.optim.Optimizer, settings: TrainSettings, steps_per_epoch: int
) -> torch.optim.lr_scheduler.MultiStepLR:
    """×gamma at each milestone: steps 1..m₁ run at lr, steps m₁+1..m₂ at lr·gamma, and so on."""
    return torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestone_steps(settings, steps_per_epoch), gamma=settings.gamma
    )
