"""Artifacts: what a stage hands to the next one, as a folder on disk.

An artifact is a folder plus `artifact.json` saying which format loader rebuilds the model, which
original pretrained model it descends from (that decides tokenizer and image preprocessing), which
head it carries and with which labels, and, for an adapter, its base. Methods with their own
on-disk form (packed ternary weights, pruning masks, adapters) declare a format loader and the
pydantic model of the format's own settings (`tailor.plugins.declare_method`), so any later stage
can load any earlier stage's output, and a folder written by another version is refused clearly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from .config import ConfigError, StrictModel, explain
from .files import atomic_write_text

ARTIFACT_VERSION = 2  # 2: head, label_names and base are fields; meta holds only the format's settings


class ArtifactVersionError(ConfigError):
    """An artifact.json this version of tailor cannot read (written by another version, or damaged)."""


if TYPE_CHECKING:  # artifacts are read by the CLI before torch is imported
    from torch import nn


@dataclass
class Artifact:
    path: Path
    model_name: str  # the original pretrained model (zoo name or hub id)
    format: str = "hf"
    head: str | None = None  # the head the saved model carries: "classifier", "mlm", "mae", "causal_lm", ...
    label_names: list[str] = field(default_factory=list)  # a classifier's classes, in label-id order
    base: dict | None = None  # an adapter's base model: `vera.stages.base_record`
    meta: dict = field(default_factory=dict)  # the format's own settings, checked by its declared model
    files: dict = field(default_factory=dict)  # sha256 of every file beside artifact.json, checked on load

    @property
    def num_labels(self) -> int | None:
        return len(self.label_names) or None

    def settings(self) -> StrictModel:
        """The format's own settings as its declared pydantic model (e.g. kdqat's `QuantConfig`)."""
        from .plugins import format_settings

        model = format_settings(self.format)
        if model is None:
            raise TypeError(f"artifact format '{self.format}' declares no settings model")
        try:
            return model.model_validate(self.meta)
        except ValidationError as e:
            problems = explain(e, model, "meta").args[0].removeprefix("invalid configuration:").strip()
            raise ArtifactVersionError(
                f"{self.path / 'artifact.json'}: the '{self.format}' settings do not match "
                f"this version of tailor ({problems}); run the stage that made it again"
            ) from None

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
        record = {"version": ARTIFACT_VERSION, **asdict(self), "path": "."}
        atomic_write_text(self.path / "artifact.json", json.dumps(record, indent=2))

    @classmethod
    def load(cls, path: Path) -> "Artifact":
        """Read `artifact.json`; a record of another version raises `ArtifactVersionError`, saying what to do."""
        file = Path(path) / "artifact.json"
        record = json.loads(file.read_text())
        if record.pop("version", None) != ARTIFACT_VERSION:
            raise ArtifactVersionError(
                f"{file} was written by another version of tailor (this one reads artifact "
                f"version {ARTIFACT_VERSION}): run the stage that made it again"
            )
        record.pop("path", None)
        try:
            artifact = cls(Path(path), **record)
        except TypeError as e:
            raise ArtifactVersionError(f"{file}: {e}; run the stage that made it again") from None
        if artifact.meta:
            from .plugins import format_settings

            if format_settings(artifact.format) is not None:
                artifact.settings()  # validated now, so a stale folder fails here and not mid-stage
        return artifact

    @classmethod
    def at(cls, folder: str | Path) -> "Artifact":
        """The artifact in a folder a user named; a folder without one is a ConfigError saying what to give."""
        if not (Path(folder) / "artifact.json").is_file():
            raise ConfigError(f"'{folder}' is not an artifact folder (no artifact.json); give a stage's model/ folder")
        return cls.load(Path(folder))

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
        raise ValueError(
            f"artifact {artifact.path}: unknown format '{artifact.format}' (known: {', '.join(known_formats())})"
        )
    return loader(artifact, head, num_labels)


def save_hf(
    model: "nn.Module",
    path: Path,
    model_name: str,
    *,
    head: str | None = None,
    label_names: list[str] | tuple = (),
    meta: dict | None = None,
    format: str = "hf",
    extra_tensors: dict | None = None,
) -> Artifact:
    """Save a transformers model with `save_pretrained` (safetensors) as an artifact; `format` names the
    loader for methods that keep extra files beside the weights (masks, quantizer settings);
    `extra_tensors` are written into the checkpoint beside the model's own (a pooler carried through)."""
    from .dist import on_main_process, unwrap

    def write() -> None:
        inner = unwrap(model)
        inner.save_pretrained(path, state_dict={**inner.state_dict(), **extra_tensors} if extra_tensors else None)

    on_main_process(write)
    return Artifact(Path(path), model_name, format, head, list(label_names), meta=meta or {}).save()


def load_hf(artifact: Artifact, head: str, num_labels: int | None) -> "nn.Module":
    """The loader of format "hf": a `save_pretrained` folder, with the zoo's head classes."""
    from .zoo.models import load_folder

    return load_folder(artifact.path, head, num_labels)
