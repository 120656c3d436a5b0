"""Configs of the robust-tickets stages (import-light: pydantic only, no torch).

Choices the paper leaves open (spec: [UNCLEAR]) are fields here, with the default we picked named
in the description: epsilon/steps/step size/norm of PGD, global vs layer-wise ranking, which layers
are prunable, A-IMP rounds and rewinding, LMP score initialisation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...config import StrictModel
from ...engine.settings import TrainSettings
from ...zoo.data import DataConfig


def _fraction(value: object) -> object:
    """Accept '8/255'-style strings for epsilons and step sizes (pixel units on [0, 1])."""
    if isinstance(value, str) and "/" in value:
        num, den = value.split("/", 1)
        return float(num) / float(den)
    return value


class AttackConfig(StrictModel):
    """An attack on [0, 1] pixels (epsilon in pixel units, before the model's normalisation)."""

    kind: Literal["pgd", "fgsm"] = "pgd"
    norm: Literal["linf", "l2"] = Field("linf", description="PGD threat model; FGSM is always l_inf")
    eps: float = Field(2 / 255, ge=0, description="radius in [0, 1] pixel units; '8/255' strings are accepted")
    steps: int = Field(3, gt=0, description="PGD iterations (ignored by FGSM)")
    step_size: float | None = Field(None, gt=0, description="PGD step; default 2.5 * eps / steps (Madry et al.)")
    random_start: bool = Field(True, description="start PGD at a uniform random point of the ball")

    _parse_fractions = field_validator("eps", "step_size", mode="before")(_fraction)

    @model_validator(mode="after")
    def _fgsm_is_linf(self) -> "AttackConfig":
        if self.kind == "fgsm" and self.norm != "linf":
            raise ValueError("attack.kind 'fgsm' is an l_inf attack; set norm: linf or use kind: pgd")
        return self

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps


class RobustPretrainConfig(TrainSettings):
    """Stage 1: PGD adversarial training (Madry) on the source task; attack: null trains naturally."""

    attack: AttackConfig | None = Field(
        default_factory=AttackConfig, description="null: natural training (the baseline's pretraining)"
    )
    data: DataConfig | None = Field(None, description="source task; default: the recipe's data")
    eval_attack: AttackConfig | None = Field(None, description="report robust accuracy under this attack")
    robust_eval_size: int = Field(500, gt=0, description="test examples attacked for robust accuracy")


class MaskSpec(StrictModel):
    """Which weights are pruned and in what pattern (shared by every scheme)."""

    sparsity: float = Field(
        0.7,
        gt=0,
        lt=1,
        description="fraction of prunable weights removed (heads / heads_ffn: of the heads and of the FFN neurons)",
    )
    pattern: Literal["unstructured", "channel", "nm", "heads", "heads_ffn"] = Field(
        "unstructured",
        description="heads / heads_ffn: whole attention heads (and FFN neurons) of a BERT, RoBERTa "
        "or ViT encoder, removable physically by tailor export-ticket",
    )
    scope: Literal["global", "layerwise"] = Field(
        "global", description="rank magnitudes across all prunable layers (global) or within each layer"
    )
    n: int = Field(2, gt=0, description="N of N:M (keep N of every M along the input dimension)")
    m: int = Field(4, gt=1, description="M of N:M")
    include: list[str] | None = Field(
        None,
        description="regexes on weight names to prune; default: every conv/linear weight but the "
        "classifier head (channel pattern on resnet_cifar: the block-internal convs)",
    )
    exclude: list[str] = Field(
        default_factory=lambda: [r"(^|\.)classifier\.", r"(^|\.)fc\."],
        description="regexes on weight names never pruned (default: the head)",
    )

    @model_validator(mode="after")
    def _nm_fixes_sparsity(self) -> "MaskSpec":
        if self.pattern == "nm":
            if self.n >= self.m:
                raise ValueError(f"N:M needs n < m, got n={self.n}, m={self.m}")
            implied = 1 - self.n / self.m
            if abs(self.sparsity - implied) > 1e-9 and "sparsity" in self.model_fields_set:
                raise ValueError(
                    f"pattern nm with n={self.n}, m={self.m} has sparsity {implied}; "
                    f"drop 'sparsity' or set it to {implied}"
                )
            object.__setattr__(self, "sparsity", implied)
        return self


class FromStage(StrictModel):
    source: str | None = Field(
        None,
        description="id of an earlier stage whose model to use, e.g. "
        "'01-robust_pretrain' (lets one recipe branch); default: previous stage",
    )


class DrawTicketConfig(MaskSpec, TrainSettings, FromStage):
    """Stage 2: draw a ticket by OMP, A-IMP (training settings are per round) or LMP.

    A-IMP from a ticket continues IMP: the incoming mask is kept and pruning resumes among its survivors.
    """

    scheme: Literal["omp", "aimp", "lmp"] = "omp"
    data: DataConfig | None = Field(
        None, description="A-IMP: the task trained on (source); LMP: the downstream task the mask is learned for"
    )
    rounds: int = Field(3, gt=0, description="A-IMP: prune rounds; round r keeps (1-sparsity)^(r/rounds)")
    rate: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="A-IMP: fraction of the survivors pruned per round "
        "(0.2 is IMP's usual rate); overrides rounds, "
        "the last round stops at sparsity",
    )
    rewind: bool = Field(
        True,
        description="A-IMP: rewind surviving weights to the stage's input weights "
        "after each round (the ticket is then m * theta_pre)",
    )
    attack: AttackConfig | None = Field(
        default_factory=AttackConfig, description="A-IMP: PGD of Eq. 1 (null gives natural IMP)"
    )
    score_init: Literal["magnitude", "kaiming"] = Field(
        "magnitude", description="LMP: initial scores |theta_pre| (mask starts at OMP) or kaiming-uniform"
    )
    score_rank: Literal["signed", "abs"] = Field(
        "signed",
        description="LMP: rank the raw signed scores (default) or |score| as edge-popup does; "
        "edge-popup's per-layer ranking is score_rank: abs with scope: layerwise",
    )
    head_lr: float | None = Field(None, gt=0, description="LMP: learning rate of the new head (default: lr)")


class TransferConfig(TrainSettings, FromStage):
    """Stage 3: fine-tune the ticket on a downstream task with its mask held fixed."""

    protocol: Literal["finetune", "linear"] = Field(
        "finetune", description="finetune: every unpruned weight trains; linear: frozen ticket (BN in eval), new head"
    )
    data: DataConfig | None = Field(None, description="downstream task; default: the recipe's data")
    new_head: bool = Field(True, description="re-initialise the classifier head for the downstream task")
    head_lr: float | None = Field(None, gt=0, description="learning rate of the head (default: lr)")
    eval_attack: AttackConfig | None = Field(None, description="report robust accuracy under this attack")
    robust_eval_size: int = Field(500, gt=0, description="test examples attacked for robust accuracy")
    dense: bool = Field(
        False,
        description="allow an input with no pruning mask (a dense baseline); "
        "without it, a transfer with no ticket before it is a recipe error",
    )


class TicketSettings(StrictModel):
    """What a ticket artifact records beside its weights and masks (its ``meta``)."""

    sparsity: float = Field(ge=0, le=1, description="the fraction of prunable weights the masks remove")
    scheme: Literal["omp", "aimp", "lmp"] | None = Field(None, description="draw_ticket: how it was drawn")
    pattern: str | None = None
    target_sparsity: float | None = None
    protocol: str | None = Field(None, description="transfer: finetune or linear")
    source: str | None = Field(None, description="transfer: the ticket it started from")
    exported_from: str | None = Field(None, description="export-ticket: the masked ticket it was sliced from")
