"""The optimizers and the step schedule the engine offers beside transformers' own schedules.

`optimizer: adamw | sgd` builds torch's AdamW or SGD (momentum, Nesterov, coupled L2 weight decay
as in the robust-tickets transfer recipe) over the engine's parameter groups; `scheduler: multistep`
is torch's MultiStepLR with milestones given in epochs or steps. `optimizer: bertadam` is the one
optimizer written here (`BertAdam`): the original BERT code's Adam, which the KD-QAT reference code
trains with; no library ships it (transformers 5 dropped `AdamW(correct_bias=False)`).
"""

from __future__ import annotations

import math

import torch

from .settings import TrainSettings


def make_optimizer(groups: list[dict], settings: TrainSettings, eps: float = 1e-8) -> torch.optim.Optimizer:
    """torch's AdamW or SGD, or BertAdam, over parameter groups that carry their own `lr` and `weight_decay`."""
    if settings.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum, nesterov=settings.nesterov)
    if settings.optimizer == "bertadam":
        return BertAdam(groups, lr=settings.lr, betas=settings.adam_betas, max_grad_norm=settings.max_grad_norm)
    return torch.optim.AdamW(groups, lr=settings.lr, betas=settings.adam_betas, eps=eps)


class BertAdam(torch.optim.Optimizer):
    """Adam as the original BERT code (pytorch-pretrained-bert's ``BertAdam``) runs it, per parameter p:

        g ← g · min(1, c / ‖g‖)            each parameter's gradient clipped to its own norm c
        m ← β1·m + (1-β1)·g,  v ← β2·v + (1-β2)·g²       no bias correction
        p ← p - lr·(m / (√v + ε) + wd·p)    weight decay added to the update (decoupled)

    With it the engine turns transformers' global clipping off (trainer.py). ε = 1e-6 as in that code.
    """

    def __init__(
        self,
        params,
        lr: float,
        betas=(0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_grad_norm: float | None = 1.0,
    ):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "max_grad_norm": max_grad_norm}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["max_grad_norm"]:
                norms = torch.stack(torch._foreach_norm(grads))
                torch._foreach_mul_(grads, (group["max_grad_norm"] / (norms + 1e-6)).clamp(max=1.0).unbind())
            for p in params:
                if not self.state[p]:
                    self.state[p].update(exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            m = [self.state[p]["exp_avg"] for p in params]
            v = [self.state[p]["exp_avg_sq"] for p in params]
            beta1, beta2 = group["betas"]
            torch._foreach_lerp_(m, grads, 1 - beta1)
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
            update = torch._foreach_div(m, torch._foreach_add(torch._foreach_sqrt(v), group["eps"]))
            if group["weight_decay"]:
                torch._foreach_add_(update, params, alpha=group["weight_decay"])
            torch._foreach_add_(params, update, alpha=-group["lr"])
        return loss


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
