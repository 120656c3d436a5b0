"""Strict, typed configuration objects shared by recipes and stages.

Every config in tailor is a pydantic model that rejects unknown keys, so a misspelled key in a
recipe fails at load time, before any compute is spent.
"""

from __future__ import annotations

import reprlib

from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class ConfigError(ValueError):
    """A recipe or setting the user can fix; the message names the key and the valid choices."""


def explain(err: ValidationError, model: type[BaseModel], where: str) -> ConfigError:
    """Turn a pydantic error into one message a user can act on (key path, problem, choices)."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in (where, *e["loc"]) if p != "")
        if e["type"] == "extra_forbidden":
            owner = _owner(model, e["loc"][:-1])
            valid = ", ".join(sorted(owner.model_fields)) if owner else "?"
            lines.append(f"unknown key '{path}' (valid keys here: {valid})")
        else:
            lines.append(f"'{path}': {e['msg']} (got {_short_repr(e.get('input'))})")
    return ConfigError("invalid configuration:\n  " + "\n  ".join(lines))


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 120, 120


def _short_repr(value) -> str:
    """repr capped in depth and width: an aliased YAML structure must not expand into the message."""
    return _REPR.repr(value)


def _owner(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Follow a location path through nested models to the model that owns the last key."""
    for key in loc:
        if isinstance(key, int):
            continue
        field = model.model_fields.get(str(key))
        ann = getattr(field, "annotation", None)
        nested = [a for a in (ann, *getattr(ann, "__args__", ())) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model
