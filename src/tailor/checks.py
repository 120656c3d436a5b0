"""The dry pass: every check a recipe can fail, run before any model loads or any folder is made.

`check_recipe` verifies the stage graph (which stage feeds which, that a `source` names an earlier
stage, that `export` follows `qat_distill`, that `transfer` has a ticket unless `dense: true`), that
local paths exist, that the data loads and is usable (rows, at least two classes, its modality
matches the model's), that an `unlabeled` corpus exists and yields a first example in the right
column, and that `max_length` fits the model's positions. Every problem found is
reported at once, in one ConfigError. `tailor run --check RECIPE` runs only this pass.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError
from .recipe import Recipe
from .zoo.corpus import check as check_corpus
from .zoo.corpus import corpus_files
from .zoo.models import model_modality

_FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")


@dataclass
class Plan:
    """What the dry pass found: one line per stage (what it reads), and the loaded task data."""

    lines: list[str] = field(default_factory=list)
    task: object | None = None  # TaskData of the recipe's data for the first seed, reused by the run


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.lower().endswith(_FILE_SUFFIXES)


def _feeder(recipe: Recipe, i: int) -> int | None:
    """Index of the stage whose model stage i reads (its `source`, else the previous one)."""
    source = getattr(recipe.calls[i].config, "source", None)
    ids = [f"{j + 1:02d}-{c.name}" for j, c in enumerate(recipe.calls)]
    if source is not None:
        return ids.index(source) if source in ids[:i] else None
    return i - 1 if i > 0 else None


def _has_ticket(recipe: Recipe, i: int | None) -> bool:
    if i is None:
        return (Path(recipe.model).expanduser() / "masks.safetensors").is_file()
    call = recipe.calls[i]
    if call.name == "draw_ticket":
        return True
    return call.name == "transfer" and not call.config.dense and _has_ticket(recipe, _feeder(recipe, i))


def stage_graph_problems(recipe: Recipe) -> list[str]:
    problems = []
    ids = [f"{j + 1:02d}-{c.name}" for j, c in enumerate(recipe.calls)]
    for i, call in enumerate(recipe.calls):
        where = f"stages.{i}.{call.name}"
        source = getattr(call.config, "source", None)
        if source is not None and source not in ids[:i]:
            problems.append(
                f"{where}.source: '{source}' is not an earlier stage of this recipe "
                f"(earlier: {', '.join(ids[:i]) or 'none'})"
            )
            continue
        if call.name == "export" and (i == 0 or recipe.calls[i - 1].name != "qat_distill"):
            problems.append(
                f"{where}: export packs a quantized student, so it must come right after "
                f"'qat_distill' (it follows {recipe.calls[i - 1].name if i else 'nothing'!r})"
            )
        if call.name == "transfer" and not call.config.dense and not _has_ticket(recipe, _feeder(recipe, i)):
            fed = _feeder(recipe, i)
            problems.append(
                f"{where}: transfers a ticket, but its input ({ids[fed] if fed is not None else recipe.model}) "
                "holds no pruning mask; put a 'draw_ticket' stage before it (or point 'source' at one), "
                "or set dense: true to fine-tune the dense model on purpose"
            )
    return problems


def _model_config(name: str) -> dict | None:
    from .zoo.models import resolve

    config = resolve(name) / "config.json"  # a hub id is fetched here (or fails here when offline)
    return json.loads(config.read_text()) if config.is_file() else None


def _load_data(recipe: Recipe, seed: int):
    from .errors import describe
    from .zoo.data import load_task

    name = recipe.data.source
    quiet = logging.getLogger("datasets")  # it logs its own traceback before raising; ours says it once
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return load_task(recipe.data, seed)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001  (datasets/PIL/pandas wrap their errors in many types)
        detail = describe(e) or f"{type(e).__name__}: {e}"
        bad = _damaged_images(Path(name)) if Path(name).is_dir() else []
        if bad:
            detail = f"damaged image file(s): {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} ({detail})"
        raise ConfigError(f"data '{name}' could not be loaded: {detail}") from None
    finally:
        quiet.setLevel(level)


def _damaged_images(folder: Path) -> list[str]:
    """Image files under `folder` that PIL cannot decode fully (only run after a load failed)."""
    from PIL import Image

    bad = []
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            with Image.open(f) as im:
                im.load()
        except Exception:  # noqa: BLE001  (any decode failure names the file)
            bad.append(str(f))
    return bad


def _corpora(recipe: Recipe) -> list[tuple[str, object]]:
    """(key, CorpusConfig) of every corpus a stage streams: `unlabeled` and `head_warmup_corpus`."""
    return [
        (f"stages.{i}.{c.name}.{field}", corpus)
        for i, c in enumerate(recipe.calls)
        for field in ("unlabeled", "head_warmup_corpus")
        if (corpus := getattr(c.config, field, None)) is not None
    ]


def check_recipe(recipe: Recipe, load_data: bool = True) -> Plan:
    """Run every check; raise one ConfigError listing all problems, else return the plan."""
    problems = stage_graph_problems(recipe)
    model = recipe.model
    if _looks_local(model) and not Path(model).expanduser().is_dir():
        problems.append(f"model: folder '{model}' does not exist")
    datas = [("data", recipe.data)] + [
        (f"stages.{i}.{c.name}.data", c.config.data)
        for i, c in enumerate(recipe.calls)
        if getattr(c.config, "data", None)
    ]
    for where, data in datas:
        named = (
            {f"{where}.name": data.name}
            if data.files is None
            else {f"{where}.files.{k}": v for k, v in data.files.items()}
        )
        for key, path in named.items():
            if _looks_local(str(path)) and not Path(path).expanduser().exists():
                problems.append(f"{key}: file or folder '{path}' does not exist")
    corpora = _corpora(recipe)
    for where, corpus in corpora:
        try:
            corpus_files(corpus, where)
        except ConfigError as e:
            problems.append(str(e))
    if problems:
        raise ConfigError("recipe check failed:\n  - " + "\n  - ".join(problems))
    plan = Plan()
    modality = model_modality(model)
    if load_data:  # data before the model: a bad file fails before any model is resolved
        task = plan.task = _load_data(recipe, recipe.seeds[0])
        if len(task.train) == 0:
            problems.append(
                f"data '{recipe.data.source}': no training rows left (is the file empty or header-only, "
                "or train_size/per_class/classes too strict?)"
            )
        if modality and task.modality != modality:
            problems.append(
                f"data '{recipe.data.source}' is {task.modality} but model '{model}' takes {modality} "
                f"input; use a {task.modality} model (`tailor models` lists each one's modality)"
            )
        for where, corpus in corpora:
            problems.extend(check_corpus(corpus, modality or task.modality, where))
    config = _model_config(model)
    positions = (config or {}).get("max_position_embeddings") or (config or {}).get("n_positions")
    if modality == "text" and positions and recipe.data.max_length > positions:
        problems.append(
            f"data.max_length: {recipe.data.max_length} exceeds model '{model}''s {positions} positions; "
            f"set data.max_length <= {positions}"
        )
    if problems:
        raise ConfigError("recipe check failed:\n  - " + "\n  - ".join(problems))
    ids = [f"{j + 1:02d}-{c.name}" for j, c in enumerate(recipe.calls)]
    for i, call in enumerate(recipe.calls):
        fed = _feeder(recipe, i)
        plan.lines.append(f"{ids[i]}: reads {ids[fed] if fed is not None else model}")
    return plan
