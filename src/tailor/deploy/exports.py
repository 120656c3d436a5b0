"""``tailor export --format onnx``: any tailor model artifact → a servable ONNX folder, checked on the spot.

Per source format: a QAT student (``kdqat_student``) or packed student (``kdqat``) exports its
integer graph (8-bit activation codes × int8 weight codes through ``MatMulInteger``) and is checked
against the fake-quant (reference) student; a ``peft`` adapter on a plain base is merged
(``merge_and_unload``) and checked against the merged model; a ``ticket`` exports its masked
weights, plus ``model-smaller.onnx`` when the ticket can be removed physically; ``hf`` as is.
The folder gets the tokenizer (or image preprocessor) files, ``report.json`` with the check and a
Hub model card.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..artifacts import Artifact, load_model
from ..files import atomic_write_text
from ..config import ConfigError
from .card import run_of, write_card
from .onnx_export import ONNX_FILE, check_onnx, export_onnx, op_counts

REPORT_FILE = "report.json"


def task_inputs(source: Path):
    """The test split (prepared for the model) of the run the artifact came from."""
    from ..engine.inputs import prepare
    from ..recipe import load_recipe
    from ..zoo.data import load_task

    run = run_of(source)
    if run is None:
        raise ConfigError(f"'{source}' is not inside a run folder (<run>/seed-<s>/<stage>/model with "
                          "<run>/config.yaml), so its task's test split is unknown; export a stage's model/ folder")
    recipe = load_recipe(run / "config.yaml")
    seed = int(Path(source).resolve().parents[1].name.removeprefix("seed-"))
    return recipe, prepare(load_task(recipe.data, seed), recipe.model, recipe.data)


def _models(art: Artifact, num_labels: int, tmp: Path):
    """``(model to export, model it must agree with, kind, tags, smaller model or None)``."""
    if art.format in ("kdqat_student", "kdqat"):
        from ..methods.kdqat.config import QuantConfig
        from ..methods.kdqat.export import export_packed, load_packed
        from ..methods.kdqat.stages import load_student

        folder = art.path
        if art.format == "kdqat_student":
            folder = export_packed(load_student(art, "classifier", num_labels).eval(), tmp / "packed",
                                   QuantConfig(**art.meta["quant"]))
        return (load_packed(folder, backend="int8"), load_packed(folder), "ternary student (W2A8, integer MatMuls)",
                ["kdqat", "ternary", "int8"], None)
    model = load_model(art, "classifier", num_labels).eval()
    if art.format == "ticket":
        return model, model, "robust ticket (masked weights)", ["robust-ticket", "pruned"], _smaller(art, model)
    tags = ["peft-merged"] if art.format == "peft" else []
    return model, model, "merged adapter model" if art.format == "peft" else "model", tags, None


def _smaller(art: Artifact, model):
    from ..methods.tickets.stages import ticket_masks
    from ..methods.tickets.structured import export_smaller

    try:
        return export_smaller(model, ticket_masks(art)).eval()
    except ValueError:
        return None  # no physically smaller form for this architecture / pattern


def export_onnx_folder(source: Path, out: Path, batch_size: int = 64) -> dict:
    """Export, check in onnxruntime on the test split, save tokenizer + report + card; returns the report."""
    from ..zoo.models import tokenizer

    source, out = Path(source), Path(out)
    if not (source / "artifact.json").is_file():
        raise ConfigError(f"'{source}' is not an artifact folder (no artifact.json); give a stage's model/ folder")
    art = Artifact.load(source)
    recipe, data = task_inputs(source)
    out.mkdir(parents=True, exist_ok=True)
    example = {k: v for k, v in data.collator([data.test[i] for i in range(min(2, len(data.test)))]).items()
               if k != "labels"}
    with tempfile.TemporaryDirectory() as tmp:
        exported, reference, kind, tags, smaller = _models(art, data.num_labels, Path(tmp))
        report = {"source": str(source), "format": art.format, "kind": kind, "files": {}}
        for name, model in ((ONNX_FILE, exported), ("model-smaller.onnx", smaller)):
            if model is None:
                continue
            path = export_onnx(model, example, out, name)
            report["files"][name] = {"bytes": path.stat().st_size, "ops": op_counts(path),
                                     "check_on_test_split": check_onnx(path, reference, data.test, data.collator, batch_size)}
    if any(k in example for k in ("input_ids",)):
        tokenizer(recipe.model).save_pretrained(out)
    elif (source / "preprocessor_config.json").is_file():
        shutil.copy(source / "preprocessor_config.json", out / "preprocessor_config.json")
    report["passed"] = all(f["check_on_test_split"]["passed"] for f in report["files"].values())
    atomic_write_text(out / REPORT_FILE, json.dumps(report, indent=2))
    write_card(out, source, base_model=recipe.model, kind=kind + ", ONNX", tags=["onnx", *tags],
               pipeline_tag="text-classification" if "input_ids" in example else "image-classification",
               extra={n: f["check_on_test_split"] for n, f in report["files"].items()})
    return report

