"""Artifacts: what a stage hands to the next one, as a folder on disk.

An artifact is a folder plus `artifact.json` saying which format loader rebuilds the model and
which original pretrained model it descends from (that decides tokenizer and image preprocessing).
Methods with their own on-disk form (packed ternary weights, pruning masks, adapters) register a
format loader, so any later stage can load any earlier stage's output.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .files import atomic_write_text

if TYPE_CHECKING:  # method packages register formats at import time, which must not pull in torch
    from torch import nn

FormatLoader = Callable[["Artifact", str, "int | None"], "nn.Module"]
_FORMATS: dict[str, FormatLoader] = {}


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


def register_format(name: str, loader: FormatLoader) -> None:
    _FORMATS[name] = loader


def load_model(artifact: Artifact, head: str = "base", num_labels: int | None = None) -> "nn.Module":
    """Rebuild the model an artifact holds, with the requested head, after checking its files' sha256."""
    artifact.verify()
    if artifact.format not in _FORMATS:
        import tailor.methods  # noqa: F401  (method packages register their formats)
    if artifact.format not in _FORMATS:
        raise ValueError(f"artifact {artifact.path}: unknown format '{artifact.format}' (known: {', '.join(_FORMATS)})")
    return _FORMATS[artifact.format](artifact, head, num_labels)


def save_hf(model: "nn.Module", path: Path, model_name: str, meta: dict | None = None, format: str = "hf",
            extra_tensors: dict | None = None) -> Artifact:
    """Save a transformers model with `save_pretrained` (safetensors) as an artifact; `format` names the
    loader for methods that keep extra files beside the weights (masks, quantizer settings);
    `extra_tensors` are written into the checkpoint beside the model's own (a pooler carried through)."""
    from .dist import on_main_process
    from .engine.hooks import unwrap

    def write() -> None:
        inner = unwrap(model)
        inner.save_pretrained(path, state_dict={**inner.state_dict(), **extra_tensors} if extra_tensors else None)

    on_main_process(write)
    return Artifact(Path(path), model_name, format, meta or {}).save()


def _load_hf(artifact: Artifact, head: str, num_labels: int | None) -> "nn.Module":
    from .zoo.models import load_folder

    return load_folder(artifact.path, head, num_labels)


register_format("hf", _load_hf)
