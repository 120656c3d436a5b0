"""Training pieces the stages plug into the engine: the (adversarial) cross-entropy objective, a
callback that holds masks fixed, and freezing helpers for linear evaluation and LMP.

Batches carry [0, 1] pixels (the stages prepare inputs with ``normalize=False``); the objective
runs the model through :class:`~.attacks.PixelSpace`, so the attack's epsilon is in pixel units.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainerCallback

from ...zoo.models import HEAD_PARAM_PATTERN
from .attacks import PixelSpace, attack
from .config import AttackConfig
from .masks import MaskEnforcer


class AdversarialCE:
    """Madry et al.'s min-max objective: cross-entropy on PGD/FGSM examples (clean CE when attack is None).

    The attack is generated with the model in eval mode (BatchNorm statistics are not polluted by
    the attack's forward passes) and the loss is taken in train mode.
    """

    def __init__(self, attack_cfg: AttackConfig | None, mean: Sequence[float], std: Sequence[float], seed: int = 0):
        self.cfg = attack_cfg
        self.mean, self.std = mean, std
        self.weights = {"adv_ce" if attack_cfg else "ce": 1.0}
        self.generator = torch.Generator().manual_seed(seed)

    def terms(self, model: nn.Module, batch: Mapping[str, torch.Tensor], teacher=None) -> dict[str, torch.Tensor]:
        net = PixelSpace(model, self.mean, self.std).to(batch["pixel_values"].device)
        x, y = batch["pixel_values"], batch["labels"]
        if self.cfg is None:
            return {"ce": F.cross_entropy(net(x), y)}
        was_training = model.training
        model.eval()
        adv = attack(net, x, y, self.cfg, self.generator)
        model.train(was_training)
        return {"adv_ce": F.cross_entropy(net(adv), y)}


class MaskCallback(TrainerCallback):
    """Re-zero pruned weights and their optimizer state after every optimizer step (plus gradient hooks)."""

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor]):
        self.enforcer = MaskEnforcer(model, masks)

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        self.enforcer.after_step(optimizer)

    def on_train_end(self, args, state, control, optimizer=None, **kwargs):
        self.enforcer.after_step(optimizer)
        self.enforcer.remove()


def freeze_batchnorm(model: nn.Module) -> list:
    """Keep every BatchNorm in eval mode (running statistics fixed) even when the model trains."""

    def to_eval(module: nn.Module, _args) -> None:  # a pre-hook's return value would replace the input
        module.train(False)

    return [
        m.register_forward_pre_hook(to_eval) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


def head_parameters(model: nn.Module) -> list[str]:
    names = [n for n, _ in model.named_parameters() if re.search(HEAD_PARAM_PATTERN, n)]
    if not names:
        raise ValueError(f"no classifier head found (parameter names matching {HEAD_PARAM_PATTERN})")
    return names


def freeze_all_but(model: nn.Module, trainable: Sequence[str]) -> None:
    keep = set(trainable)
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)


@torch.no_grad()
def reset_head(model: nn.Module) -> None:
    """Re-initialise the classifier (the downstream task gets a new head)."""
    prefixes = {n.rsplit(".", 1)[0] for n in head_parameters(model)}
    for name, module in model.named_modules():
        if name in prefixes and hasattr(module, "reset_parameters"):
            module.reset_parameters()
