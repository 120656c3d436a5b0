"""The stage registry: a stage name maps to its config class and a lazily imported runner.

Registration imports no torch, so the CLI can validate a whole recipe in well under a second.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from .config import ConfigError, StrictModel


@dataclass(frozen=True)
class StageSpec:
    name: str
    config: type[StrictModel]
    runner: str  # "package.module:function"
    description: str

    def load_runner(self) -> Callable[..., Any]:
        module, func = self.runner.split(":")
        return getattr(importlib.import_module(module), func)


_STAGES: dict[str, StageSpec] = {}


def register_stage(name: str, config: type[StrictModel], runner: str, description: str) -> None:
    if name in _STAGES and _STAGES[name].runner != runner:
        raise ValueError(f"stage '{name}' is already registered by {_STAGES[name].runner}")
    _STAGES[name] = StageSpec(name, config, runner, description)


def all_stages() -> dict[str, StageSpec]:
    import tailor.methods  # noqa: F401  (registers every method's stages)

    return dict(sorted(_STAGES.items()))


def get_stage(name: str) -> StageSpec:
    stages = all_stages()
    if name not in stages:
        raise ConfigError(f"unknown stage '{name}' (valid stages: {', '.join(stages)})")
    return stages[name]
