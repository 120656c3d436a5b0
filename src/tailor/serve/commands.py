"""`tailor serve`: answer classification requests for many adapters of one base over HTTP (uvicorn)."""

from __future__ import annotations

import glob
import sys
from pathlib import Path

from ..config import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="HTTP server: many VeRA/LoRA adapters of one base, dynamically batched")
    p.add_argument("--base", help="zoo model name or a stage's output folder (default: the adapters' base)")
    p.add_argument(
        "--adapters", nargs="*", default=[], help="adapter folders, folders holding adapter folders, globs, or NAME=DIR"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=int, default=64, help="rows per model batch (1 turns batching off)")
    p.add_argument(
        "--batch-window-ms", type=float, default=5.0, help="how long a batch waits for more requests after its first"
    )
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--max-length", type=int, help="tokens per text (default and cap: the model's limit)")
    p.add_argument(
        "--overlength",
        choices=("truncate", "reject"),
        default="truncate",
        help="a text over --max-length is truncated, or rejected with 413",
    )
    p.add_argument(
        "--bucket-call-tokens",
        type=float,
        default=None,
        help="a batch is cut into length buckets where that saves more padded tokens than this "
        "(what one extra forward costs; default 64); a huge value = one padded batch",
    )
    p.add_argument("--pad-to-multiple", type=int, default=None, help="pad each bucket to a multiple of this")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20)
    p.add_argument("--max-inputs", type=int, default=256, help="texts per request")
    p.add_argument("--num-labels", type=int, help="head size when no adapter is given (default 2)")
    p.add_argument("--adapter-root", help="POST /v1/adapters may only load folders under this one")
    p.add_argument("--threads", type=int, help="torch threads for the model (default: torch's own choice)")
    p.set_defaults(func=cmd_serve)


def expand_adapters(values: list[str]) -> list[str]:
    """Globs and folders of adapter folders -> adapter folders (``NAME=DIR`` kept as given)."""
    out = []
    for value in values:
        if "=" in value and not Path(value).exists():
            out.append(value)
            continue
        matches = sorted(glob.glob(value)) if glob.has_magic(value) else [value]
        if not matches:
            raise ConfigError(f"--adapters {value}: matches no folder")
        for match in matches:
            path = Path(match)
            if (path / "artifact.json").is_file():
                out.append(match)
            elif path.is_dir() and sorted(path.glob("*/artifact.json")):
                out.extend(str(p.parent) for p in sorted(path.glob("*/artifact.json")))
            else:
                raise ConfigError(
                    f"--adapters {match}: not an adapter folder (no artifact.json in it or its sub-folders)"
                )
    return out


def open_registry(
    base: str | None,
    adapters: list[str],
    precision: str = "auto",
    max_length: int | None = None,
    overlength: str = "truncate",
    num_labels: int | None = None,
    **buckets,
):
    """A Registry on ``base`` (default: the first adapter's) with every adapter loaded and validated."""
    from ..artifacts import Artifact
    from .registry import Registry, adapter_names, base_from_arg

    pairs = adapter_names(expand_adapters(adapters))
    first = Artifact.load(Path(pairs[0][1])) if pairs else None
    if base is not None:
        base_art = base_from_arg(base)
    elif first is not None and first.base is not None:
        from ..methods.vera.stages import base_artifact

        base_art = base_artifact(first)
    else:
        raise ConfigError("tailor serve: give --base, or --adapters saved by the vera or lora stage")
    labels = num_labels or (first.num_labels if first is not None else None) or 2
    registry = Registry(
        base_art, labels, precision, max_length, overlength, **{k: v for k, v in buckets.items() if v is not None}
    )
    for name, folder in pairs:
        registry.load(folder, name)
    return registry


def cmd_serve(args) -> None:
    import uvicorn

    from ..engine.progress import quiet_libraries
    from .app import create_app

    quiet_libraries()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    registry = open_registry(
        args.base,
        args.adapters,
        args.precision,
        args.max_length,
        args.overlength,
        args.num_labels,
        bucket_call_tokens=args.bucket_call_tokens,
        pad_multiple=args.pad_to_multiple,
    )
    app = create_app(
        registry, args.max_batch, args.batch_window_ms, args.max_body_bytes, args.max_inputs, args.adapter_root
    )
    info = registry.describe()
    print(
        f"tailor serve: {len(registry.adapters)} adapters on {info['model_name']} ({info['base_format']}), "
        f"{info['precision']} ({info['reason']}), http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
