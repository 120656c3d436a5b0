"""CLI subcommand ``tailor analyze attention``: teacher vs student attention maps and per-head diagnostics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog, and the dog does not seem to mind at all."


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("analyze", help="diagnostics of trained models")
    what = a.add_subparsers(dest="analysis", required=True)
    att = what.add_parser(
        "attention",
        help="teacher vs student attention maps (PNG) and per-head "
        "map-KL / cover-length ratio / ranking loss / entropy (JSON)",
    )
    att.add_argument("--teacher", required=True, help="full-precision artifact folder (the finetune stage's model)")
    att.add_argument("--student", required=True, help="quantized artifact folder (qat_distill or export model)")
    att.add_argument("--text", action="append", help="input text (repeatable; default: one English sentence)")
    att.add_argument("--layer", type=int, default=0)
    att.add_argument("--head", type=int, default=0)
    att.add_argument("--top-k", type=int, default=5, help="k of the cover-length ratio")
    att.add_argument("--out", required=True, help="output folder")
    att.set_defaults(func=cmd_analyze_attention)


def cmd_analyze_attention(args) -> None:
    import torch

    from ...artifacts import Artifact, load_model
    from ...config import ConfigError
    from ...engine.hooks import capture
    from ...zoo.models import tokenizer
    from .analysis import attention_report, plot_maps
    from .attention import ensure_kdqat_attention, layer_paths

    teacher_art, student_art = Artifact.at(args.teacher), Artifact.at(args.student)
    num_labels = teacher_art.num_labels
    models = {
        role: ensure_kdqat_attention(load_model(art, "classifier", num_labels).eval())
        for role, art in (("teacher", teacher_art), ("student", student_art))
    }
    n_layers = len(layer_paths(models["teacher"]))
    if not 0 <= args.layer < n_layers:
        raise ConfigError(f"--layer {args.layer} out of range: the model has layers 0..{n_layers - 1}")
    tok = tokenizer(teacher_art.model_name)
    batch = tok(args.text or [DEFAULT_TEXT], padding=True, truncation=True, max_length=128, return_tensors="pt")
    maps = {}
    for role, model in models.items():
        paths = {str(i): p.probs for i, p in enumerate(layer_paths(model))}
        with torch.no_grad(), capture(model, paths) as found:
            model(**batch)
        maps[role] = [found[str(i)] for i in range(len(paths))]
    heads = maps["teacher"][0].shape[1]
    if not 0 <= args.head < heads:
        raise ConfigError(f"--head {args.head} out of range: the model has heads 0..{heads - 1}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = attention_report(maps["student"], maps["teacher"], batch["attention_mask"], args.top_k)
    (out / "attention_report.json").write_text(json.dumps(report, indent=2))
    n = int(batch["attention_mask"][0].sum())
    tokens = tok.convert_ids_to_tokens(batch["input_ids"][0][:n].tolist())
    png = plot_maps(
        maps["student"][args.layer][0, args.head],
        maps["teacher"][args.layer][0, args.head],
        args.layer,
        args.head,
        out / f"attention_l{args.layer}_h{args.head}.png",
        tokens,
    )
    for name, per_layer in report.items():
        print(f"{name:20s} per layer (mean over heads): " + " ".join(f"{sum(h) / len(h):.4f}" for h in per_layer))
    print(f"wrote {png} and {out / 'attention_report.json'}")
