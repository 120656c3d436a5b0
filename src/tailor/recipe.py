"""Recipes: YAML (safe_load only) -> validated, typed config objects.

A recipe is data, never code. Every key is checked before any work starts: an unknown key, a
wrong type, or an unknown model, dataset or stage name raises a ConfigError naming the key and
the valid choices. The digest of the resolved config (defaults filled in, plus fingerprints of
the data and model content) names the run folder, so re-running the same recipe resumes it, and
changing any setting, or the data, starts a new run. YAML is read with a cap on alias expansion
(a 600-byte "billion laughs" recipe would otherwise expand to hundreds of megabytes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, PrivateAttr, ValidationError

from .config import ConfigError, StrictModel, explain
from .plugins import get_stage
from .zoo import data as data_zoo
from .zoo import models as model_zoo
from .zoo.data import DataConfig


@dataclass(frozen=True)
class StageCall:
    name: str
    config: StrictModel


class Recipe(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="run folder prefix")
    description: str = ""
    model: str = Field(description="zoo model name, local folder or Hugging Face hub id")
    data: DataConfig
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    stages: list[dict[str, Any]] = Field(min_length=1, description="ordered list of {stage_name: settings}")
    _calls: list[StageCall] = PrivateAttr(default_factory=list)
    _fingerprints: dict | None = PrivateAttr(None)

    @property
    def calls(self) -> list[StageCall]:
        return self._calls

    def resolved(self) -> dict:
        """The recipe with every default filled in (what the digest and config.yaml record)."""
        out = self.model_dump(exclude={"stages"})
        out["stages"] = [{c.name: c.config.model_dump(mode="json")} for c in self._calls]
        out["fingerprints"] = self.fingerprints()
        return out

    def fingerprints(self) -> dict:
        """Content fingerprints of the model and of every dataset the recipe reads (computed once)."""
        if self._fingerprints is None:
            from .fingerprints import corpus_fingerprint, data_config_fingerprint, model_fingerprint

            datas = [self.data] + [c.config.data for c in self._calls if getattr(c.config, "data", None)]
            self._fingerprints = {
                "model": model_fingerprint(self.model),
                "data": {d.source: data_config_fingerprint(d) for d in datas},
            }
            for field in ("unlabeled", "head_warmup_corpus"):  # only if set: other recipes keep their digests
                corpora = [getattr(c.config, field, None) for c in self._calls]
                if any(corpora):
                    self._fingerprints[field] = {c.name: corpus_fingerprint(c) for c in corpora if c is not None}
        return self._fingerprints

    def digest(self) -> str:
        """Short hash of everything that changes results (seeds excluded: each seed is a sub-folder)."""
        body = {k: v for k, v in self.resolved().items() if k not in ("seeds", "description")}
        return hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]


def parse_recipe(raw: dict, source: str = "recipe") -> Recipe:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a recipe is a mapping with keys name, model, data, seeds, stages")
    raw = {k: v for k, v in raw.items() if k != "fingerprints"}  # a run's config.yaml re-runs as a recipe
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as e:
        raise explain(e, Recipe, "") from None
    calls = []
    for i, entry in enumerate(recipe.stages):
        if len(entry) != 1:
            raise ConfigError(
                f"stages.{i}: each stage is a one-key mapping like '- finetune: {{epochs: 3}}', got keys {list(entry)}"
            )
        ((name, settings),) = entry.items()
        spec = get_stage(name)
        try:
            calls.append(StageCall(name, spec.config.model_validate(settings or {})))
        except ValidationError as e:
            raise explain(e, spec.config, f"stages.{i}.{name}") from None
    model_zoo.check_name(recipe.model)
    data_zoo.check_name(recipe.data.name)
    recipe._calls = calls
    return recipe


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file '{path}' not found")
    raw = read_yaml(path)
    for item in overrides:
        apply_override(raw, item)
    return parse_recipe(raw, str(path))


MAX_YAML_NODES = 100_000  # nodes after alias expansion; real recipes have a few hundred


class _CountingLoader(yaml.SafeLoader):
    """SafeLoader that refuses a document whose aliases expand past MAX_YAML_NODES nodes."""

    def compose_document(self):
        node = super().compose_document()
        sizes: dict[int, int] = {}

        def size(n) -> int:  # memoised on node identity: linear in the text, not in the expansion
            if id(n) not in sizes:
                children = (
                    n.value
                    if isinstance(n, yaml.SequenceNode)
                    else [x for kv in n.value for x in kv]
                    if isinstance(n, yaml.MappingNode)
                    else []
                )
                sizes[id(n)] = 1 + sum(size(c) for c in children)
            return sizes[id(n)]

        if node is not None and size(node) > MAX_YAML_NODES:
            raise ConfigError(
                f"{self.name}: the YAML expands to {size(node):,} nodes through aliases (limit "
                f"{MAX_YAML_NODES:,}); a recipe needs a few hundred. Remove the nested '*' aliases."
            )
        return node


def read_yaml(path: Path):
    """Parse a YAML file safely; syntax errors name the line and column, bad bytes the encoding."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"recipe file '{path}' is not UTF-8 text (byte {e.start}); re-save it as UTF-8") from None
    loader = _CountingLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(f"recipe file '{path}' is not valid YAML at {where}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"recipe file '{path}' is not valid YAML: {str(e)[:300]}") from None
    finally:
        loader.dispose()


def apply_override(raw: dict, item: str) -> None:
    """Set `a.b.c=value` in a raw recipe; list items by index or, for stages, by stage name."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.path=value (e.g. stages.0.finetune.lr=1e-4)")
    key, value = item.split("=", 1)
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: depth + 1]))
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last, key)] = _override_value(key, value)
    elif isinstance(node, dict):
        node[last] = _override_value(key, value)
    else:
        raise ConfigError(f"override '{key}': '{'.'.join(parts[:-1])}' is not a mapping")


def _override_value(key: str, value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(
            f"override '{key}': value {value[:80]!r} is not valid YAML ({getattr(e, 'problem', e)})"
        ) from None


def _child(node: Any, part: str, where: str) -> Any:
    if isinstance(node, list):
        item = node[_index(node, part, where)]
        if not part.isdigit():  # stages.<name>: descend into that stage's settings
            if item[part] is None:
                item[part] = {}
            return item[part]
        return item
    if not isinstance(node, dict):
        raise ConfigError(f"override '{where}': parent is not a mapping")
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def _index(items: list, part: str, where: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    named = [i for i, it in enumerate(items) if isinstance(it, dict) and part in it]
    if len(named) == 1:  # stages.finetune.lr: look a stage up by its name
        return named[0]
    raise ConfigError(f"override '{where}': no unique list item '{part}' (use an index 0..{len(items) - 1})")
