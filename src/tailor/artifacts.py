"""Artifacts: what a stage hands to the next one, as a folder on disk.

An artifact is a folder plus `artifact.json` saying which format loader rebuilds the model and
which original pretrained model it descends from (that decides tokenizer and image preprocessing).
Methods with their own on-disk form (packed ternary weights, pruning masks, adapters) declare a
format loader (`tailor.plugins.declare_method`), so any later stage can load any earlier stage's output.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .files import atomic_write_text

if TYPE_CHECKING:  # artifacts are read by the CLI before torch is imported
    from torch import nn



@dataclass
class Artifact:
    path: Path
    model_name: str
    format: str = "hf"
    meta: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # sha256 of every file beside artifact.json, checked on load

    def save(self) -> "Artifact":
        """Write `artifact.json` with the sha256 of the folder's files (on rank 0 only under torchrun)."""
        from .dist import on_main_process

        on_main_process(self.write)
        return self

    def write(self) -> None:
        """Write `artifact.json` now, in this process (`save` is the rank-aware call)."""
        from .integrity import folder_hashes

        self.path.mkdir(parents=True, exist_ok=True)
        self.files = folder_hashes(self.path, exclude=("artifact.json",))
        atomic_write_text(self.path / "artifact.json", json.dumps({**asdict(self), "path": "."}, indent=2))

    @classmethod
    def load(cls, path: Path) -> "Artifact":
        record = json.loads((Path(path) / "artifact.json").read_text())
        return cls(Path(path), record["model_name"], record["format"], record.get("meta", {}), record.get("files", {}))

    def verify(self) -> None:
        """Raise IntegrityError if a file certified in artifact.json is missing or changed."""
        from .integrity import verify

        verify(self.path, self.files, "model folder")


def load_model(artifact: Artifact, head: str = "base", num_labels: int | None = None) -> "nn.Module":
    """Rebuild the model an artifact holds, with the requested head, after checking its files' sha256."""
    from .plugins import format_loader, known_formats

    artifact.verify()
    loader = format_loader(artifact.format)
    if loader is None:
        raise ValueError(f"artifact {artifact.path}: unknown format '{artifact.format}' "
                         f"(known: {', '.join(known_formats())})")
    return loader(artifact, head, num_labels)


def save_hf(model: "nn.Module", path: Path, model_name: str, meta: dict | None = None, format: str = "hf") -> Artifact:
    """Save a transformers model with `save_pretrained` (safetensors) as an artifact; `format` names the
    loader for methods that keep extra files beside the weights (masks, quantizer settings)."""
    from .dist import on_main_process, unwrap

    on_main_process(lambda: unwrap(model).save_pretrained(path))
    return Artifact(Path(path), model_name, format, meta or {}).save()


def load_hf(artifact: Artifact, head: str, num_labels: int | None) -> "nn.Module":
    """The loader of format "hf": a `save_pretrained` folder, with the zoo's head classes."""
    from .zoo.models import load_folder

    return load_folder(artifact.path, head, num_labels)
