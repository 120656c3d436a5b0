"""Robust tickets (Fu et al., DAC 2023): robust_pretrain -> draw_ticket -> transfer.

Declares the three stages, the "ticket" artifact format (model + masks) and "ticket_sliced" (a
transformer ticket with its pruned heads and FFN neurons removed); import-light.
"""

from ...plugins import declare_method
from .config import DrawTicketConfig, RobustPretrainConfig, TicketSettings, TransferConfig

declare_method(
    "tickets",
    __name__,
    "sparse subnetworks drawn from adversarially robust models, transferred downstream",
    stages=[
        (
            "robust_pretrain",
            RobustPretrainConfig,
            ".stages:run_robust_pretrain",
            "PGD adversarial (or natural) training on the source task",
        ),
        (
            "draw_ticket",
            DrawTicketConfig,
            ".stages:run_draw_ticket",
            "draw a sparse ticket: OMP, A-IMP or LMP; unstructured, channel, N:M, heads or heads_ffn",
        ),
        (
            "transfer",
            TransferConfig,
            ".stages:run_transfer",
            "fine-tune (mask held fixed) or linearly evaluate a ticket on a downstream task",
        ),
    ],
    formats={
        "ticket": (".stages:load_ticket", TicketSettings),
        "ticket_sliced": (".stages:load_sliced_ticket", TicketSettings),
    },
    repro=".repro",
    bench=".bench",
    commands=".commands",
)
