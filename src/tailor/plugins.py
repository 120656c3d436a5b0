"""How a method plugs in: one `declare_method(...)` call in its package's ``__init__.py``.

A method declares its stages, its artifact formats and, optionally, its ``repro``, ``bench`` and CLI
``commands`` modules, all as import strings ("module:function" for callables, "module" for
modules; a leading "." is relative to the declaring package), so declaring imports no torch and the
CLI validates a recipe in well under a second. Nothing lists the methods by hand: the built-in ones
are the sub-packages of `tailor.methods`, found by walking that package, and a method shipped in
another distribution is found through the ``tailor.methods`` entry-point group::

    [project.entry-points."tailor.methods"]
    mymethod = "mypackage.mymethod"     # the package whose __init__ calls declare_method

peft's `register_peft_method` is the model; discovery imports by name (`importlib`), which is
the only way the registry reaches up to the methods.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, Sequence, Union, runtime_checkable

from .config import ConfigError, StrictModel

if TYPE_CHECKING:
    import argparse

ENTRY_POINT_GROUP = "tailor.methods"
BUILTIN_PACKAGE = "tailor.methods"
Part = Literal["repro", "bench", "commands"]


@runtime_checkable
class ReproModule(Protocol):
    """``tailor repro <method>``: run a profile's experiments into ``out`` and return its results."""

    def run(self, profile: str, out: Path, seeds: list[int] | None = None) -> dict: ...


@runtime_checkable
class BenchModule(Protocol):
    """``tailor bench <method>``: measure and print; the returned dict is what the CLI writes to bench.json."""

    def run(self, out: Path) -> dict: ...


@runtime_checkable
class CommandsModule(Protocol):
    """A method's own sub-commands, added to the ``tailor`` parser."""

    def register(self, subparsers: "argparse._SubParsersAction") -> None: ...


_PROTOCOLS: dict[str, type] = {"repro": ReproModule, "bench": BenchModule, "commands": CommandsModule}


def _resolve(target: str, package: str) -> str:
    return package + target if target.startswith(".") else target


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attr) if attr else loaded


@dataclass(frozen=True)
class StageSpec:
    """A stage: its config class and the runner ``runner(config, ctx: StageContext) -> StageResult``."""

    name: str
    config: type[StrictModel]
    runner: str  # "package.module:function"
    description: str

    def load_runner(self) -> Callable[..., Any]:
        return _import(self.runner)


@dataclass(frozen=True)
class Method:
    """Everything tailor knows about one method, as declared by its package."""

    name: str
    package: str
    summary: str
    stages: tuple[StageSpec, ...]
    formats: Mapping[str, str]  # artifact format -> "module:function" loader(artifact, head, num_labels)
    parts: Mapping[str, str] = field(default_factory=dict)  # "repro" / "bench" / "commands" -> module

    def part(self, kind: Part) -> ModuleType:
        """The method's repro, bench or commands module, checked against its protocol."""
        if kind not in self.parts:
            raise ConfigError(
                f"method '{self.name}' has no `tailor {kind}` "
                f"(methods with one: {', '.join(n for n, m in all_methods().items() if kind in m.parts)})"
            )
        module = _import(self.parts[kind])
        if not isinstance(module, _PROTOCOLS[kind]):
            raise TypeError(f"{self.parts[kind]} does not implement {_PROTOCOLS[kind].__name__}")
        return module


_METHODS: dict[str, Method] = {}
_STAGES: dict[str, StageSpec] = {}
_FORMATS: dict[str, str] = {"hf": "tailor.artifacts:load_hf"}  # a save_pretrained folder
_FORMAT_SETTINGS: dict[str, type[StrictModel]] = {}
_discovered = False


FormatDecl = Union[str, tuple[str, type[StrictModel]]]  # a loader, or a loader and its settings model


def declare_method(
    name: str,
    package: str,
    summary: str,
    *,
    stages: Sequence[tuple[str, type[StrictModel], str, str]] = (),
    formats: Mapping[str, FormatDecl] | None = None,
    repro: str | None = None,
    bench: str | None = None,
    commands: str | None = None,
) -> Method:
    """Register a method: ``stages`` as ``(name, config class, runner, description)``, ``formats`` as
    ``{format: loader}`` or ``{format: (loader, settings model)}`` (the pydantic model its artifacts'
    ``meta`` must satisfy), and optional module names. Call it once, from the method's ``__init__.py``."""
    formats = {f: decl if isinstance(decl, tuple) else (decl, None) for f, decl in (formats or {}).items()}
    method = Method(
        name=name,
        package=package,
        summary=summary,
        stages=tuple(StageSpec(s, config, _resolve(runner, package), doc) for s, config, runner, doc in stages),
        formats={f: _resolve(loader, package) for f, (loader, _) in formats.items()},
        parts={k: _resolve(v, package) for k, v in (("repro", repro), ("bench", bench), ("commands", commands)) if v},
    )
    if name in _METHODS and _METHODS[name].package != package:
        raise ValueError(f"method '{name}' is already declared by {_METHODS[name].package}")
    for spec in method.stages:
        if spec.name in _STAGES and _STAGES[spec.name].runner != spec.runner:
            raise ValueError(f"stage '{spec.name}' is already registered by {_STAGES[spec.name].runner}")
    for fmt, loader in method.formats.items():
        register_format(fmt, loader, formats[fmt][1])
    _METHODS[name] = method
    _STAGES.update({s.name: s for s in method.stages})
    return method


def register_format(name: str, loader: str, settings: type[StrictModel] | None = None) -> None:
    """Name the loader ``"module:function"`` of an artifact format and the model of its settings
    (methods do it in `declare_method`)."""
    if name in _FORMATS and _FORMATS[name] != loader:
        raise ValueError(f"artifact format '{name}' is already registered by {_FORMATS[name]}")
    _FORMATS[name] = loader
    if settings is not None:
        _FORMAT_SETTINGS[name] = settings


def discover() -> None:
    """Import every built-in method package and every ``tailor.methods`` entry point, once."""
    global _discovered
    if _discovered:
        return
    builtin = importlib.import_module(BUILTIN_PACKAGE)
    for info in sorted(pkgutil.iter_modules(builtin.__path__), key=lambda i: i.name):
        if info.ispkg:
            importlib.import_module(f"{BUILTIN_PACKAGE}.{info.name}")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        importlib.import_module(entry.value)
    _discovered = True


def rediscover() -> None:
    """Look again (a distribution was installed or put on ``sys.path`` since the first look)."""
    global _discovered
    _discovered = False
    discover()


def all_methods() -> dict[str, Method]:
    discover()
    return dict(sorted(_METHODS.items()))


def get_method(name: str) -> Method:
    methods = all_methods()
    if name not in methods:
        raise ConfigError(f"unknown method '{name}' (methods: {', '.join(methods)})")
    return methods[name]


def all_stages() -> dict[str, StageSpec]:
    discover()
    return dict(sorted(_STAGES.items()))


def get_stage(name: str) -> StageSpec:
    stages = all_stages()
    if name not in stages:
        raise ConfigError(f"unknown stage '{name}' (valid stages: {', '.join(stages)})")
    return stages[name]


def format_loader(name: str) -> Callable[..., Any] | None:
    """The loader ``(artifact, head, num_labels) -> nn.Module`` of an artifact format, or None if unknown."""
    discover()
    return _import(_FORMATS[name]) if name in _FORMATS else None


def format_settings(name: str) -> type[StrictModel] | None:
    """The pydantic model an artifact format's ``meta`` must satisfy, if it declares one."""
    discover()
    return _FORMAT_SETTINGS.get(name)


def known_formats() -> list[str]:
    discover()
    return sorted(_FORMATS)
