"""One interface for the ticket-drawing schemes, chosen by name (after open_lth's ``Strategy.prune``).

A :class:`PruningStrategy` turns a model, the incoming ticket's mask (or None) and the
``draw_ticket`` config into the ticket's :class:`~.masks.Mask`, leaving the model as the masked
ticket. Training is a :class:`Fit` the caller provides (the stage binds the engine; tests bind a
plain loop), so a strategy holds only the scheme's logic. ``STRATEGIES`` is the registry;
``draw_ticket``'s ``scheme`` names one of its entries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Protocol

from torch import nn

from .config import DrawTicketConfig
from .masks import Mask, apply_masks
from .pruning import aimp, lmp, omp
from .training import freeze_all_but, freeze_batchnorm, head_parameters, reset_head


class Fit(Protocol):
    def __call__(
        self,
        model: nn.Module,
        mask: Mask | None = None,
        *,
        round: int | None = None,
        adversarial: bool = False,
        head_lr: float | None = None,
    ) -> dict:
        """Train ``model`` in place with ``mask`` held fixed; ``round`` numbers an iterative scheme's
        rounds, ``adversarial`` trains with the config's attack (Eq. 1), ``head_lr`` gives the head
        its own learning rate. Returns the training report."""


class PruningStrategy(ABC):
    name: ClassVar[str]
    new_head: ClassVar[bool] = False  # learns the mask with a new head for draw_ticket.data's task

    @abstractmethod
    def prune(self, model: nn.Module, current_mask: Mask | None, config: DrawTicketConfig, fit: Fit) -> Mask:
        """The ticket's mask; ``model`` is left as the masked ticket."""

    def summary(self, reports: list[dict]) -> dict:
        """The stage metrics made of the training reports this strategy's fits returned."""
        return {}


STRATEGIES: dict[str, PruningStrategy] = {}


def register_strategy(cls: type[PruningStrategy]) -> type[PruningStrategy]:
    STRATEGIES[cls.name] = cls()
    return cls


def get_strategy(name: str) -> PruningStrategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown ticket-drawing scheme '{name}' (valid: {', '.join(STRATEGIES)})")
    return STRATEGIES[name]


@register_strategy
class OneShotMagnitude(PruningStrategy):
    """OMP: the smallest |theta_pre| go in one shot; no training."""

    name = "omp"

    def prune(self, model, current_mask, config, fit):
        mask = omp(model, config)
        apply_masks(model, mask)
        return mask


@register_strategy
class AdversarialIMP(PruningStrategy):
    """A-IMP: rounds of PGD training (mask fixed), magnitude pruning among survivors, rewinding;
    an incoming ticket's mask is continued from."""

    name = "aimp"

    def prune(self, model, current_mask, config, fit):
        def train_round(m: nn.Module, mask: Mask | None, r: int) -> None:
            fit(m, mask, round=r, adversarial=True)

        return aimp(model, config, config.rounds, config.rewind, train_round, current_mask, config.rate)

    def summary(self, reports):
        return {"rounds": reports}


@register_strategy
class LearnableMask(PruningStrategy):
    """LMP: scores on frozen theta_pre (BatchNorm statistics frozen too) and a new head, on the downstream task."""

    name = "lmp"
    new_head = True

    def prune(self, model, current_mask, config, fit):
        reset_head(model)
        head = set(head_parameters(model))
        freeze_all_but(model, [])

        def train(m: nn.Module) -> None:
            for n, p in m.named_parameters():
                p.requires_grad_(n.endswith(".scores") or n in head)
            hooks = freeze_batchnorm(m)
            fit(m, None, head_lr=config.head_lr)
            for h in hooks:
                h.remove()

        mask = lmp(model, config, config.score_init, train, config.score_rank)
        model.requires_grad_(True)
        return mask

    def summary(self, reports):
        return {"train": reports[-1]}
