"""Content hashes of the files a stage hands on, and their verification before use.

A finished stage certifies its artifact folder in `done.json` and `artifact.json` (sha256 of every
file); a loader re-hashes before it trusts the folder, so a truncated file, or one overwritten
with garbage of the same size, is caught before it is trained on. Trainer checkpoints get the same
manifest, so resume can pick the newest checkpoint that is whole. hashlib does the hashing; only
the folder walk and the comparison are written here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .config import ConfigError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_hashes(folder: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under `folder` (relative POSIX paths), skipping names in `exclude`
    and the hidden temporary files of atomic writes."""
    folder = Path(folder)
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in exclude and not p.name.startswith(".")
    }


def mismatches(folder: Path, expected: dict[str, str]) -> list[str]:
    """Files of `expected` that are missing under `folder` or whose content changed."""
    folder = Path(folder)
    bad = []
    for rel, digest in expected.items():
        path = folder / rel
        if not path.is_file():
            bad.append(f"{rel} (missing)")
        elif sha256_file(path) != digest:
            bad.append(f"{rel} (content changed)")
    return bad


def weights_fingerprint(folder: Path) -> str:
    """sha256 over the weight files (*.safetensors, *.bin) of a model folder: which base a model is."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin"))
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.relative_to(folder).as_posix()} {sha256_file(p)}\n".encode())
    return h.hexdigest()


class IntegrityError(ConfigError):
    """A certified file no longer matches its recorded hash."""


def verify(folder: Path, expected: dict[str, str], what: str) -> None:
    bad = mismatches(folder, expected)
    if bad:
        raise IntegrityError(
            f"{what} '{folder}' is damaged: {', '.join(bad)} no longer match the sha256 recorded "
            "when it was written; re-run the stage that made it (delete its done.json) "
            "or restore the files"
        )
