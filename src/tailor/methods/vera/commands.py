"""`tailor predict --adapters DIR... --input FILE`: serve many VeRA adapters in mixed batches.

Each input line is JSON: ``{"adapter": <folder as given, its name, or its index>, "text": "..."}``.
Each output line adds the predicted ``label`` (name), ``label_id`` and class ``probs``. Rows are cut
into batches of ``--batch-size`` and every batch runs once through the base model, whatever mix of
adapters it holds (see multi_adapter.MixedVeraBatch).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="classify texts, each with its own VeRA adapter, in mixed batches")
    p.add_argument("--adapters", nargs="+", required=True, help="adapter folders saved by the vera stage")
    p.add_argument("--input", required=True, help='JSONL file: {"adapter": ..., "text": ...} per line')
    p.add_argument("--output", help="JSONL file for the predictions (default: stdout)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128, help="tokens per text")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="arithmetic of the forward (auto: bf16 where the hardware runs it fast, else fp32)",
    )
    p.set_defaults(func=cmd_predict)


def read_requests(path: str) -> list[dict]:
    """The JSONL input of `predict`; a bad line is a ConfigError naming the line."""
    from ...config import ConfigError

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--input '{path}' is not a file")
    rows = []
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ConfigError(f"--input '{path}' line {n} is not JSON ({e}): {line[:80]!r}") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ConfigError(
                f"--input '{path}' line {n}: each line is an object with a string \"text\" "
                f'(and an "adapter"), got {line[:80]!r}'
            )
        rows.append(row)
    if not rows:
        raise ConfigError(f"--input '{path}' holds no requests")
    return rows


def cmd_predict(args) -> None:
    from ...config import ConfigError

    for d in args.adapters:
        if not (Path(d) / "artifact.json").is_file():
            raise ConfigError(
                f"--adapters '{d}' is not an adapter folder (no artifact.json); give the 'model' folder of a vera stage"
            )
    rows = read_requests(args.input)
    results = predict(
        args.adapters, rows, batch_size=args.batch_size, max_length=args.max_length, precision=args.precision
    )
    text = "".join(json.dumps(r) + "\n" for r in results)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {len(results)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def predict(
    adapter_dirs: list[str], rows: list[dict], batch_size: int = 64, max_length: int = 128, precision: str = "auto"
) -> list[dict]:
    """Predictions for ``rows`` (dicts with ``adapter`` and ``text``), in input order."""
    import torch

    from ...artifacts import Artifact, load_model
    from ...config import ConfigError
    from ...zoo import models as zoo
    from .multi_adapter import MixedVeraBatch

    artifacts = [Artifact.load(Path(d)) for d in adapter_dirs]
    base_art = _shared_base(adapter_dirs, artifacts)
    first = artifacts[0]
    if first.head != "classifier":
        raise ConfigError(
            f"{adapter_dirs[0]}: predict serves classification adapters; this one has head {first.head!r}"
        )
    base = load_model(base_art, "classifier", first.num_labels)
    server = MixedVeraBatch.from_pretrained(
        base, [a.path for a in artifacts], names=[f"adapter{i}" for i in range(len(artifacts))], precision=precision
    )
    lookup = _adapter_lookup(adapter_dirs)
    tok = zoo.tokenizer(first.model_name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = next(server.model.parameters()).device
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        ids = [_resolve(lookup, r, start + i) for i, r in enumerate(chunk)]
        enc = tok(
            [r["text"] for r in chunk], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        ).to(device)
        probs = torch.softmax(server(ids, **enc).logits.float(), -1).cpu()
        for i, (r, p) in enumerate(zip(chunk, probs)):
            label_id = int(p.argmax())
            names = artifacts[ids[i]].label_names
            out.append(
                {
                    **r,
                    "label_id": label_id,
                    "label": names[label_id] if label_id < len(names) else label_id,
                    "probs": [round(float(x), 6) for x in p],
                }
            )
    return out


def _shared_base(dirs: list[str], artifacts):
    from ...config import ConfigError
    from .adapters import check_base
    from .stages import base_artifact

    for d, a in zip(dirs, artifacts):
        if a.format != "peft" or a.base is None:
            raise ConfigError(f"{d}: not an adapter saved by the vera stage (format {a.format!r})")
    bases = [base_artifact(a) for a in artifacts]
    for a, b in zip(artifacts, bases):
        check_base(a, b)
    paths = sorted({str(b.path) for b in bases})
    if len(paths) > 1:
        raise ConfigError(f"adapters sit on different base models {paths}; a mixed batch needs one base")
    return bases[0]


def _adapter_lookup(dirs: list[str]) -> dict[str, int]:
    """An adapter may be named by its index, the folder as given, or the folder's name if unique."""
    lookup = {str(i): i for i in range(len(dirs))}
    lookup.update({d: i for i, d in enumerate(dirs)})
    names = [Path(d).name for d in dirs]
    lookup.update({n: i for i, n in enumerate(names) if names.count(n) == 1})
    return lookup


def _resolve(lookup: dict[str, int], row: dict, line: int) -> int:
    key = str(row.get("adapter", ""))
    if key not in lookup:
        from ...config import ConfigError

        raise ConfigError(
            f"input row {line}: unknown adapter {key!r}; use an index 0..{len(set(lookup.values())) - 1}"
            " or one of the folders given to --adapters"
        )
    return lookup[key]
