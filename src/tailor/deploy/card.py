"""Hub-format model cards (``README.md`` with YAML metadata) for export folders.

The card is built from what the run recorded: the recipe (``<run>/config.yaml``), each stage's
test metrics (``<run>/seed-<s>/<stage>/done.json``), the files in the folder and the command that
made it, so ``huggingface_hub.upload_folder`` can publish the folder as is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from ..files import atomic_write_text


def run_of(artifact_dir: Path) -> Path | None:
    """``<run>`` for an artifact at ``<run>/seed-<s>/<NN>-<stage>/model``, if it has a ``config.yaml``."""
    run = Path(artifact_dir).resolve().parents[2] if len(Path(artifact_dir).resolve().parents) > 2 else None
    return run if run is not None and (run / "config.yaml").is_file() else None


def stage_metrics(artifact_dir: Path) -> list[tuple[str, dict]]:
    """``(stage id, test metrics)`` of every finished stage of the artifact's seed, in order."""
    seed_dir = Path(artifact_dir).resolve().parents[1]
    rows = []
    for done in sorted(seed_dir.glob("*/done.json")):
        test = json.loads(done.read_text()).get("metrics", {}).get("test", {})
        rows.append((done.parent.name, {k: v for k, v in test.items() if isinstance(v, (int, float))}))
    return rows


def _sizes(folder: Path) -> list[str]:
    return [
        f"| `{p.name}` | {p.stat().st_size / 1e6:.2f} MB |"
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix in (".onnx", ".safetensors", ".bin")
    ]


def write_card(
    folder: Path,
    source: Path,
    *,
    base_model: str,
    kind: str,
    tags: list[str],
    pipeline_tag: str,
    extra: dict | None = None,
    command: list[str] | None = None,
) -> Path:
    """Write ``folder/README.md`` for an export of the artifact at ``source``."""
    folder, run = Path(folder), run_of(source)
    recipe = yaml.safe_load((run / "config.yaml").read_text()) if run else {}
    meta = {
        "library_name": "onnx" if (folder / "model.onnx").is_file() else "transformers",
        "base_model": base_model,
        "pipeline_tag": pipeline_tag,
        "tags": ["tailor", *tags],
    }
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).strip(),
        "---",
        "",
        f"# {recipe.get('name', folder.name)}: {kind}",
        "",
        f"Made with tailor from `{base_model}`.",
        "",
        "## Recipe and stages",
        "",
    ]
    stages = recipe.get("stages") or []
    lines += [
        f"{i + 1}. `{next(iter(s))}`: `{json.dumps(next(iter(s.values())), sort_keys=True)}`"
        for i, s in enumerate(stages)
    ] or ["(no recipe recorded beside the source artifact)"]
    data = recipe.get("data")
    lines += ["", "## Data", "", f"`{json.dumps(data, sort_keys=True)}`" if data else "(not recorded)", ""]
    rows = stage_metrics(source) if run else []
    if rows:
        keys = sorted({k for _, m in rows for k in m if k in ("accuracy", "macro_f1", "mcc")})
        lines += [
            "## Test metrics (each stage of the run, the earlier ones are the baselines)",
            "",
            "| stage | " + " | ".join(keys) + " |",
            "|---|" + "---|" * len(keys),
        ]
        lines += [f"| {sid} | " + " | ".join(f"{m[k]:.4f}" if k in m else "" for k in keys) + " |" for sid, m in rows]
        lines.append("")
    if extra:
        lines += ["## Export check", "", "```json", json.dumps(extra, indent=2), "```", ""]
    lines += [
        "## Sizes",
        "",
        "| file | size |",
        "|---|---|",
        *_sizes(folder),
        "",
        "## Command",
        "",
        "```",
        " ".join(["tailor", *(command if command is not None else sys.argv[1:])]),
        "```",
        "",
    ]
    path = folder / "README.md"
    atomic_write_text(path, "\n".join(lines))
    return path
