"""Robust tickets (Fu et al., DAC 2023): robust_pretrain -> draw_ticket -> transfer.

Registers the three stages and the "ticket" artifact format (model + masks); import-light.
"""
from ...artifacts import register_format
from ...stages import register_stage
from .config import DrawTicketConfig, RobustPretrainConfig, TransferConfig

_STAGES = "tailor.methods.tickets.stages"
register_stage("robust_pretrain", RobustPretrainConfig, f"{_STAGES}:run_robust_pretrain",
               "PGD adversarial (or natural) training on the source task")
register_stage("draw_ticket", DrawTicketConfig, f"{_STAGES}:run_draw_ticket",
               "draw a sparse ticket: OMP, A-IMP or LMP; unstructured, channel or N:M")
register_stage("transfer", TransferConfig, f"{_STAGES}:run_transfer",
               "fine-tune (mask held fixed) or linearly evaluate a ticket on a downstream task")


def _load_ticket(artifact, head, num_labels):
    from .stages import load_ticket

    return load_ticket(artifact, head, num_labels)


register_format("ticket", _load_ticket)
