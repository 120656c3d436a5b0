"""CLI subcommand ``tailor export-ticket``: a channel-pruned resnet_cifar ticket as a smaller model."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export-ticket", help="remove a ticket's pruned channels physically (resnet_cifar, "
                                             "channel pattern); outputs are checked equal to the masked model")
    e.add_argument("ticket", help="a ticket artifact folder (<run>/seed-<s>/<NN>-draw_ticket/model or a transfer's)")
    e.add_argument("--out", required=True, help="folder for the smaller model (an ordinary 'hf' artifact)")
    e.set_defaults(func=cmd_export_ticket)


def export_ticket(ticket: Path, out: Path) -> dict:
    """Export and save; returns parameter counts and the max |logit difference| on a random batch."""
    import torch

    from ...artifacts import Artifact, save_hf
    from ...config import ConfigError
    from ...deploy.card import write_card
    from .stages import _stored_num_labels, load_ticket, ticket_masks
    from .structured import export_channel_pruned

    if not (ticket / "artifact.json").is_file():
        raise ConfigError(f"'{ticket}' is not an artifact folder (no artifact.json); give a stage's model/ folder")
    art = Artifact.load(ticket)
    masks = ticket_masks(art)
    if masks is None:
        raise ConfigError(f"'{ticket}' holds no masks.safetensors: it is not a ticket")
    model = load_ticket(art, "classifier", _stored_num_labels(art)).eval()
    small = export_channel_pruned(model, masks).eval()
    x = torch.rand(4, small.config.num_channels, 32, 32)
    with torch.no_grad():
        diff = float((small(pixel_values=x).logits - model(pixel_values=x).logits).abs().max())
    save_hf(small, out, art.model_name, head=art.head, label_names=art.label_names,
            meta={**art.meta, "exported_from": str(ticket)})
    if (ticket / "preprocessor_config.json").is_file():
        shutil.copy(ticket / "preprocessor_config.json", out / "preprocessor_config.json")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    result = {"params_ticket": count(model), "params_exported": count(small),
              "inner_channels": small.config.inner_channels, "max_abs_logit_diff": diff}
    write_card(out, ticket, base_model=art.model_name, kind="robust ticket, channels removed physically",
               tags=["robust-ticket", "pruned"], pipeline_tag="image-classification", extra=result)
    return result


def cmd_export_ticket(args) -> None:
    result = export_ticket(Path(args.ticket), Path(args.out))
    print(f"exported {args.ticket} -> {args.out}: {result['params_ticket']} -> {result['params_exported']} parameters, "
          f"block widths {result['inner_channels']}, max |logit difference| {result['max_abs_logit_diff']:.2e}")
