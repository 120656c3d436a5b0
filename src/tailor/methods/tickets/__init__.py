"""Robust tickets (Fu et al., DAC 2023): robust_pretrain -> draw_ticket -> transfer.

Registers the three stages, the "ticket" artifact format (model + masks) and "ticket_sliced" (a
transformer ticket with its pruned heads and FFN neurons removed); import-light.
"""
from ...artifacts import register_format
from ...stages import register_stage
from .config import DrawTicketConfig, RobustPretrainConfig, TransferConfig

_STAGES = "tailor.methods.tickets.stages"
register_stage("robust_pretrain", RobustPretrainConfig, f"{_STAGES}:run_robust_pretrain",
               "PGD adversarial (or natural) training on the source task")
register_stage("draw_ticket", DrawTicketConfig, f"{_STAGES}:run_draw_ticket",
               "draw a sparse ticket: OMP, A-IMP or LMP; unstructured, channel, N:M, heads or heads_ffn")
register_stage("transfer", TransferConfig, f"{_STAGES}:run_transfer",
               "fine-tune (mask held fixed) or linearly evaluate a ticket on a downstream task")


def _load_ticket(artifact, head, num_labels):
    from .stages import load_ticket

    return load_ticket(artifact, head, num_labels)


register_format("ticket", _load_ticket)


def _load_sliced(artifact, head, num_labels):
    if head != "classifier":
        raise ValueError(f"{artifact.path}: an exported (sliced) ticket loads with its classifier head only, "
                         f"not '{head}'")
    from .transformer_structured import load_sliced

    return load_sliced(artifact.path, num_labels)


register_format("ticket_sliced", _load_sliced)
