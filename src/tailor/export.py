"""``tailor export``: a model artifact → a deployable folder, checked on the spot, with a model card.

``--format packed`` packs a QAT student into kdqat's 2-bit safetensors format (`pack_student`, the
one packing path the ``export`` stage uses too) and checks it against the student on the run's test
split. ``--format onnx`` writes a servable ONNX folder; per source format: a QAT student
(``kdqat_student``) or packed student (``kdqat``) exports its
integer graph (8-bit activation codes × int8 weight codes through ``MatMulInteger``) and is checked
against the fake-quant (reference) student; a ``peft`` adapter on a plain base is merged
(``merge_and_unload``) and checked against the merged model; a ``ticket`` exports its masked
weights, plus ``model-smaller.onnx`` when the ticket can be removed physically; ``hf`` as is.
The folder gets the tokenizer (or image preprocessor) files, ``report.json`` with the check and a
Hub model card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from .artifacts import Artifact, load_model
from .config import ConfigError
from .deploy.card import run_of, write_card
from .files import atomic_write_text

REPORT_FILE = "report.json"


def task_inputs(source: Path):
    """The test split (prepared for the model) of the run the artifact came from."""
    from .engine.inputs import prepare
    from .recipe import load_recipe
    from .zoo.data import load_task

    run = run_of(source)
    if run is None:
        raise ConfigError(
            f"'{source}' is not inside a run folder (<run>/seed-<s>/<stage>/model with "
            "<run>/config.yaml), so its task's test split is unknown; export a stage's model/ folder"
        )
    recipe = load_recipe(run / "config.yaml")
    seed = int(Path(source).resolve().parents[1].name.removeprefix("seed-"))
    return recipe, prepare(load_task(recipe.data, seed), recipe.model, recipe.data)


def _models(art: Artifact, num_labels: int, tmp: Path):
    """``(model to export, model it must agree with, kind, tags, smaller model or None)``."""
    if art.format in ("kdqat_student", "kdqat"):
        from .methods.kdqat.export import load_packed
        from .methods.kdqat.stages import pack_student

        folder = art.path
        if art.format == "kdqat_student":
            folder = pack_student(art, tmp / "packed", num_labels)[0].path
        return (
            load_packed(folder, backend="int8"),
            load_packed(folder),
            "ternary student (W2A8, integer MatMuls)",
            ["kdqat", "ternary", "int8"],
            None,
        )
    model = load_model(art, "classifier", num_labels).eval()
    if art.format == "ticket":
        return model, model, "robust ticket (masked weights)", ["robust-ticket", "pruned"], _smaller(art, model)
    tags = ["peft-merged"] if art.format == "peft" else []
    return model, model, "merged adapter model" if art.format == "peft" else "model", tags, None


def _smaller(art: Artifact, model):
    from .methods.tickets.stages import ticket_masks
    from .methods.tickets.structured import export_smaller

    try:
        return export_smaller(model, ticket_masks(art)).eval()
    except ValueError:
        return None  # no physically smaller form for this architecture / pattern


def export_onnx_folder(source: Path, out: Path, batch_size: int = 64) -> dict:
    """Export, check in onnxruntime on the test split, save tokenizer + report + card; returns the report."""
    from .deploy.onnx_export import ONNX_FILE, check_onnx, export_onnx, op_counts
    from .zoo.models import tokenizer

    source, out = Path(source), Path(out)
    art = Artifact.at(source)
    recipe, data = task_inputs(source)
    out.mkdir(parents=True, exist_ok=True)
    example = {
        k: v for k, v in data.collator([data.test[i] for i in range(min(2, len(data.test)))]).items() if k != "labels"
    }
    with tempfile.TemporaryDirectory() as tmp:
        exported, reference, kind, tags, smaller = _models(art, data.num_labels, Path(tmp))
        report = {"source": str(source), "format": art.format, "kind": kind, "files": {}}
        for name, model in ((ONNX_FILE, exported), ("model-smaller.onnx", smaller)):
            if model is None:
                continue
            path = export_onnx(model, example, out, name)
            report["files"][name] = {
                "bytes": path.stat().st_size,
                "ops": op_counts(path),
                "check_on_test_split": check_onnx(path, reference, data.test, data.collator, batch_size),
            }
    if any(k in example for k in ("input_ids",)):
        tokenizer(recipe.model).save_pretrained(out)
    elif (source / "preprocessor_config.json").is_file():
        shutil.copy(source / "preprocessor_config.json", out / "preprocessor_config.json")
    report["passed"] = all(f["check_on_test_split"]["passed"] for f in report["files"].values())
    atomic_write_text(out / REPORT_FILE, json.dumps(report, indent=2))
    write_card(
        out,
        source,
        base_model=recipe.model,
        kind=kind + ", ONNX",
        tags=["onnx", *tags],
        pipeline_tag="text-classification" if "input_ids" in example else "image-classification",
        extra={n: f["check_on_test_split"] for n, f in report["files"].items()},
    )
    return report


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "export",
        help="pack a qat_distill student (2-bit codes + scales) into a safetensors file, "
        "or export any model artifact to ONNX (checked in onnxruntime)",
    )
    e.add_argument(
        "student",
        help="the student's artifact folder (<run>/seed-<s>/<NN>-qat_distill/model); "
        "with --format onnx any stage's model/ folder (student, peft adapter, ticket, hf)",
    )
    e.add_argument("--out", required=True, help="folder for the packed artifact / the ONNX folder")
    e.add_argument(
        "--format",
        choices=("packed", "onnx"),
        default="packed",
        help="packed: the kdqat safetensors format (default); onnx: model.onnx + tokenizer + report.json, "
        "checked against tailor's model on the run's test split",
    )
    e.set_defaults(func=cmd_export)


def cmd_export(args) -> None:
    if args.format == "onnx":
        return _export_onnx(args)
    from .methods.kdqat.export import load_packed, size_report
    from .methods.kdqat.stages import agreement_with_student, pack_student

    source = Artifact.at(args.student)
    artifact, student = pack_student(source, Path(args.out))
    report = size_report(student, artifact.path)
    extra = {"size": report["total"]}
    if run_of(Path(args.student)) is not None:  # the export's check, on the task's own test split
        extra["check_on_test_split"] = agreement_with_student(
            student, load_packed(artifact.path), task_inputs(Path(args.student))[1], 64
        )
        print(f"check on the test split: {extra['check_on_test_split']}")
    write_card(
        artifact.path,
        Path(args.student),
        base_model=source.model_name,
        kind="ternary student (W2A8, packed)",
        tags=["kdqat", "ternary"],
        pipeline_tag="text-classification",
        extra=extra,
    )
    for name, row in report.items():
        print(
            f"{name:28s} fp32 {row['fp32_bytes']:>12,.0f} B   packed {row['packed_bytes']:>12,.0f} B   "
            f"{row['ratio']:6.2f}x"
        )
    print(f"wrote {artifact.path}")


def _export_onnx(args) -> None:
    report = export_onnx_folder(Path(args.student), Path(args.out))
    for name, f in report["files"].items():
        check = f["check_on_test_split"]
        print(
            f"{name}: {f['bytes'] / 1e6:.2f} MB, {f['ops'].get('MatMulInteger', 0)} MatMulInteger / "
            f"{f['ops'].get('MatMul', 0)} MatMul nodes; onnxruntime vs tailor on {check['examples']} test examples: "
            f"agreement {check['agreement_with_tailor']:.4f}, max |logit diff| {check['max_abs_logit_diff']:.2e}"
        )
    print(f"wrote {args.out} ({'check passed' if report['passed'] else 'CHECK FAILED: predictions differ'})")
    if not report["passed"]:
        raise SystemExit(1)
