"""CLI subcommand ``tailor export-ticket``: a structured ticket as a physically smaller model.

A resnet_cifar channel ticket becomes an ordinary ``hf`` artifact with narrower blocks; a BERT,
RoBERTa or ViT ticket drawn with pattern heads / heads_ffn becomes a ``ticket_sliced`` artifact
(per-layer head and neuron counts in its config). Either is checked equal to the masked model.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "export-ticket",
        help="remove a ticket's pruned channels (resnet_cifar, channel pattern) or "
        "attention heads and FFN neurons (BERT/RoBERTa/ViT, heads or heads_ffn "
        "pattern) physically; outputs are checked equal to the masked model",
    )
    e.add_argument("ticket", help="a ticket artifact folder (<run>/seed-<s>/<NN>-draw_ticket/model or a transfer's)")
    e.add_argument("--out", required=True, help="folder for the smaller model (an 'hf' or 'ticket_sliced' artifact)")
    e.set_defaults(func=cmd_export_ticket)


def probe_inputs(config, batch: int = 4) -> dict:
    """Random inputs the model accepts: pixels of its image size, or token ids with some padding."""
    import torch

    gen = torch.Generator().manual_seed(0)
    if hasattr(config, "num_channels"):
        size = getattr(config, "image_size", 32)
        return {"pixel_values": torch.rand(batch, config.num_channels, size, size, generator=gen)}
    ids = torch.randint(0, config.vocab_size, (batch, 12), generator=gen)
    mask = torch.ones_like(ids)
    mask[1:, 8:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def export_ticket(ticket: Path, out: Path) -> dict:
    """Export and save; returns parameter counts, the kept structure and the max |logit difference| on random inputs."""
    import torch

    from ...artifacts import Artifact, save_hf
    from ...config import ConfigError
    from ...deploy.card import write_card
    from ...dist import on_main_process
    from .stages import _stored_num_labels, load_ticket, ticket_masks
    from .structured import export_smaller
    from .transformer_structured import save_sliced

    art = Artifact.at(ticket)
    masks = ticket_masks(art)
    if masks is None:
        raise ConfigError(f"'{ticket}' holds no masks.safetensors: it is not a ticket")
    model = load_ticket(art, "classifier", _stored_num_labels(art)).eval()
    try:
        small = export_smaller(model, masks).eval()
    except ValueError as e:
        raise ConfigError(f"'{ticket}' cannot be made physically smaller: {e}") from e
    x = probe_inputs(model.config)
    with torch.no_grad():
        diff = float((small(**x).logits - model(**x).logits).abs().max())
    sliced = hasattr(small.config, "pruned_structure")
    meta = {**art.meta, "exported_from": str(ticket)}
    if sliced:
        on_main_process(lambda: save_sliced(small, out))
    else:
        save_hf(small, out, art.model_name, head=art.head, label_names=art.label_names, meta=meta)
    if (ticket / "preprocessor_config.json").is_file():
        shutil.copy(ticket / "preprocessor_config.json", out / "preprocessor_config.json")
    if sliced:
        Artifact(out, art.model_name, "ticket_sliced", art.head, art.label_names, meta=meta).save()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    structure = small.config.pruned_structure if sliced else {"inner_channels": small.config.inner_channels}
    result = {
        "params_ticket": count(model),
        "params_exported": count(small),
        "structure": structure,
        "max_abs_logit_diff": diff,
    }
    image = "pixel_values" in x
    write_card(
        out,
        ticket,
        base_model=art.model_name,
        kind="robust ticket, " + ("heads and FFN neurons" if sliced else "channels") + " removed physically",
        tags=["robust-ticket", "pruned"],
        pipeline_tag="image-classification" if image else "text-classification",
        extra=result,
    )
    return result


def cmd_export_ticket(args) -> None:
    result = export_ticket(Path(args.ticket), Path(args.out))
    print(
        f"exported {args.ticket} -> {args.out}: {result['params_ticket']} -> {result['params_exported']} parameters, "
        f"kept {result['structure']}, max |logit difference| {result['max_abs_logit_diff']:.2e}"
    )
