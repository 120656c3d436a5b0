"""`tailor bench serve`: a loopback load test of `tailor serve`, bounded in requests and time.

Two servers run in subprocesses on 127.0.0.1 over the same 64 VeRA adapters (r=256, random vectors
and heads, as trained ones would have): one batching (max batch 64, 5 ms window) and one with
batching off (max batch 1). An async aiohttp client sends requests at concurrency 1, 8 and 64 for
(a) the bare base (``"adapter": null``), (b) one adapter, (c) the 64 adapters round-robin, and
(d) the 64 adapters on the unbatched server. Bursts of the four cases alternate, round after round,
so load changes on a shared machine hit every case alike. Client and servers share this machine's
cores, so the client's own cost is part of every figure (aiohttp: see :func:`burst`).

``flop_bound_over_base`` is counted, not assumed: ``torch.utils.flop_counter.FlopCounterMode`` on
one forward of the bare base and one mixed forward over the 64 adapters, on the same tokens.
Answers of a batching server are checked against `tailor predict` on the same rows: in fp32 (a
third server, for the check only), where they must be equal, and in the served precision.

Around every burst the bench reads the server's own counters from /metrics (worker seconds per
phase, rows per batch and per forward, real and padded tokens), so ``where_time_goes`` says how
much of the wall time the model's forward took and how much went to everything else; and
``model_only`` times the registry's batched and row-by-row runs in this process, with no HTTP,
interleaved: the ceiling of what batching can give on this machine.

bench.json holds the four ratios at concurrency 64 and ``where_time_goes`` for the batched and
unbatched 64-adapter cases, and every measured row under ``details``; bench.md has the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

ADAPTERS, RANK, LABELS, MAX_LENGTH = 64, 256, 4, 128
CONCURRENCY = (1, 8, 64)
CASES = ("base", "single", "mixed64", "mixed64_unbatched")
WORDS = (
    "the vote early polls debate great again stronger together economy jobs health care border "
    "climate taxes rally speech tonight news media people country future plan win"
).split()


def texts(n: int, seed: int = 0) -> list[str]:
    """Tweet-like texts of 6 to 30 words (content does not matter for speed; lengths vary like tweets)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) for _ in range(n)]


def make_adapters(model_name: str, out: Path) -> tuple[list[str], dict]:
    """Save ADAPTERS VeRA adapters of ``model_name`` (random vectors and heads) as the vera stage would;
    also returns their FLOP bound (:func:`flop_bound`) from the model that made them."""
    import copy

    from ..artifacts import Artifact
    from ..methods.vera.adapters import build_vera, randomize_adapters, save_adapter
    from ..methods.vera.config import VeraFields
    from ..methods.vera.multi_adapter import MixedVeraBatch
    from ..methods.vera.stages import base_record
    from ..zoo import models as zoo

    model = build_vera(
        zoo.load(model_name, "classifier", num_labels=LABELS),
        VeraFields(r=RANK, save_projection=False),
        adapter_name="a0",
    )
    for i in range(1, ADAPTERS):
        model.add_adapter(f"a{i}", copy.deepcopy(model.peft_config["a0"]))
    randomize_adapters(model)
    base = Artifact(zoo.resolve(model_name), model_name, "hf")
    dirs = []
    for i in range(ADAPTERS):
        path = save_adapter(model, out / f"a{i}", adapter_name=f"a{i}")
        Artifact(
            path,
            model_name,
            "peft",
            "classifier",
            [f"user{i}-class{k}" for k in range(LABELS)],
            base=base_record(base, path, original=True),
        ).save()
        dirs.append(str(path))
    enc = zoo.tokenizer(model_name)(
        texts(ADAPTERS, seed=1), truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt"
    )
    return dirs, flop_bound(model.eval(), MixedVeraBatch(model, [f"a{i}" for i in range(ADAPTERS)]), enc)


def flop_bound(peft_model, mixed, enc) -> dict:
    """Matmul FLOPs of one bare-base forward and one mixed forward over every adapter, same tokens."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    rows = torch.arange(enc["input_ids"].shape[0]) % len(mixed.names)
    with torch.no_grad(), FlopCounterMode(display=False) as base, peft_model.disable_adapter():
        peft_model(**enc)
    with FlopCounterMode(display=False) as adapted:
        mixed(rows, **enc)
    return {
        "base_flops": base.get_total_flops(),
        "mixed_flops": adapted.get_total_flops(),
        "flop_bound_over_base": base.get_total_flops() / adapted.get_total_flops(),
    }


async def burst(url: str, adapters: list[str | None], concurrency: int, requests: int, seconds: float) -> dict:
    """Send up to ``requests`` requests (or for ``seconds``) from ``concurrency`` workers.

    The load generator is aiohttp, not httpx: on these 2 cores httpx's connection pool tops out near
    160 requests/s at 64 connections even on ``/health`` (aiohttp: ~1,800), so with httpx the bench
    measured its own client, which starved the server's batches."""
    import aiohttp

    pool = texts(256, seed=2)
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds

    async def worker(session):
        nonlocal sent, errors
        while sent < requests and time.perf_counter() < deadline:
            i = sent
            sent += 1
            body = {"adapter": adapters[i % len(adapters)], "text": pool[i % len(pool)]}
            start = time.perf_counter()
            try:
                async with session.post("/v1/classify", json=body) as r:
                    await r.read()
                    status = r.status
            except aiohttp.ClientError:  # a dropped connection is an error of the run, not of the bench
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)
            errors += status != 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "seconds": elapsed, "errors": errors, "latencies": latencies}


def scrape(url: str) -> dict[str, float]:
    """The server's counters that say where its time went (see :func:`where_time_goes`)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    wanted = (
        "tailor_serve_model_seconds_total",
        "tailor_serve_tokens_total",
        "tailor_serve_forwards_total",
        "tailor_serve_batch_rows_sum",
        "tailor_serve_batch_rows_count",
    )
    out = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=60).text):
        for sample in family.samples:
            if sample.name in wanted:
                out["/".join([sample.name, *sample.labels.values()])] = sample.value
    return out


def where_time_goes(bursts: list[dict]) -> dict:
    """Shares of the client-observed wall time spent in the server's model worker, by phase; the rest
    (``outside_model_share``) is HTTP, JSON, the event loop, the batch window and the client, which
    share the same cores. Also rows per forward and padded over real tokens."""
    wall = sum(b["seconds"] for b in bursts)
    server = {k: sum(b["server"].get(k, 0.0) for b in bursts) for k in bursts[0]["server"]}
    phases = {
        p: server.get(f"tailor_serve_model_seconds_total/{p}", 0.0) for p in ("tokenize", "pad", "forward", "answer")
    }
    requests, rows = sum(b["requests"] for b in bursts), server["tailor_serve_batch_rows_sum"]
    forwards = server["tailor_serve_forwards_total"]
    outside = wall - sum(phases.values())
    return {
        "wall_seconds": wall,
        **{f"{p}_share": t / wall for p, t in phases.items()},
        "outside_model_share": outside / wall,
        "outside_model_ms_per_request": 1000 * outside / requests,
        "forward_ms_per_row": 1000 * phases["forward"] / rows,
        "rows_per_batch": rows / server["tailor_serve_batch_rows_count"],
        "rows_per_forward": rows / forwards,
        "padded_over_real_tokens": server["tailor_serve_tokens_total/padded"]
        / server["tailor_serve_tokens_total/real"],
    }


def model_only(adapter_dir: str, repeats: int = 3) -> dict:
    """The batching gain with no HTTP at all: the registry's own run over 64 rows (64 adapters) as one
    bucketed batch, as one batch padded to its longest row, and row by row, interleaved in this process.
    ``batched_over_unbatched`` here is the most the server's batching can give on this machine."""
    from ..engine.timing import interleaved
    from .commands import open_registry

    registry = open_registry(None, [adapter_dir], max_length=MAX_LENGTH)
    names = list(registry.adapters)
    rows = [(names[i % len(names)], t) for i, t in enumerate(texts(64, seed=2))]

    def batch(call_tokens: float):
        def run():
            registry.bucket_call_tokens = call_tokens
            registry.run(rows)

        return run

    default = registry.bucket_call_tokens
    seconds = interleaved(
        {
            "bucketed": batch(default),
            "one_padded_batch": batch(1e12),
            "row_by_row": lambda: [registry.run([row]) for row in rows],
        },
        repeats,
    )
    return {
        "rows": len(rows),
        "seconds": seconds,
        "bucket_call_tokens": default,
        "batched_over_unbatched": seconds["row_by_row"] / seconds["bucketed"],
        "bucketed_over_one_padded_batch_speedup": seconds["one_padded_batch"] / seconds["bucketed"],
    }


def measured_burst(url: str, adapters: list[str | None], concurrency: int, requests: int, seconds: float) -> dict:
    """:func:`burst`, with the server's counters over it (``server``: after minus before)."""
    before = scrape(url)
    result = asyncio.run(burst(url, adapters, concurrency, requests, seconds))
    after = scrape(url)
    return {**result, "server": {k: v - before.get(k, 0.0) for k, v in after.items()}}


def _summary(bursts: list[dict]) -> dict:
    latencies = sorted(x for b in bursts for x in b["latencies"])
    done, seconds = len(latencies), sum(b["seconds"] for b in bursts)
    q = statistics.quantiles(latencies, n=100, method="inclusive") if done > 1 else latencies * 99
    return {
        "requests": done,
        "errors": sum(b["errors"] for b in bursts),
        "throughput_rps": done / seconds,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


def check_answers(url: str, dirs: list[str]) -> dict:
    """A server's answers for one row per adapter against `tailor predict` on the same rows, in the
    server's precision. In fp32 they must be equal; in bf16 a batch's padding and bucketing change the
    rounding, so ``label_agreement`` and ``max_abs_prob_diff`` say how close they are."""
    import httpx

    from ..methods.vera.commands import predict

    precision = httpx.get(url + "/health", timeout=60).json()["precision"]
    rows = [{"adapter": str(i), "text": t} for i, t in enumerate(texts(ADAPTERS, seed=3))]
    expected = predict(dirs, rows, batch_size=ADAPTERS, max_length=MAX_LENGTH, precision=precision)

    async def ask():
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            return await asyncio.gather(
                *(client.post("/v1/classify", json={"adapter": f"a{r['adapter']}", "text": r["text"]}) for r in rows)
            )

    answers = [r.json() for r in asyncio.run(ask())]
    diff = max(abs(a - b) for got, want in zip(answers, expected) for a, b in zip(got["probs"].values(), want["probs"]))
    agree = sum(got["label"] == want["label"] for got, want in zip(answers, expected)) / len(rows)
    return {
        "precision": precision,
        "rows": len(rows),
        "labels_equal": agree == 1,
        "label_agreement": agree,
        "max_abs_prob_diff": diff,
    }


def _model_name() -> str:
    from ..zoo import models as zoo

    info = zoo.get_info("minilm-l6")
    return "minilm-l6" if info is not None and info.available() else "tiny-bert"


def run(out: Path, rounds: int = 2, requests: int = 256, seconds: float = 3.0, model: str | None = None) -> dict:
    import logging

    from .process import ServerProcess

    logging.getLogger("httpx").setLevel(logging.WARNING)  # no log line per request
    model = model or _model_name()
    load_before = os.getloadavg()
    print(
        f"tailor bench serve: {model}, {ADAPTERS} VeRA r={RANK} adapters, loopback, load average "
        f"{load_before[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        dirs, flops = make_adapters(model, Path(tmp))
        common = ["--adapters", tmp, "--max-length", str(MAX_LENGTH), "--batch-window-ms", "5"]
        with contextlib.ExitStack() as stack:
            batched = ServerProcess([*common, "--max-batch", "64"], startup_timeout_s=900)  # slow under load
            unbatched = ServerProcess([*common, "--max-batch", "1"], startup_timeout_s=900)
            exact = ServerProcess([*common, "--max-batch", "64", "--precision", "fp32"], startup_timeout_s=900)
            for server in (batched, unbatched, exact):  # the three start side by side
                server.start()
                stack.callback(server.close)
            batched.wait_ready(), unbatched.wait_ready(), exact.wait_ready()
            answers = {"fp32": check_answers(exact.url, dirs), "served": check_answers(batched.url, dirs)}
            exact.close()  # the fp32 server only answers the check, not the load test
            names = [f"a{i}" for i in range(ADAPTERS)]
            plan = {
                "base": (batched.url, [None]),
                "single": (batched.url, ["a0"]),
                "mixed64": (batched.url, names),
                "mixed64_unbatched": (unbatched.url, names),
            }
            for url, adapters in plan.values():  # warm-up: first calls pay for lazy initialisation
                asyncio.run(burst(url, adapters, 8, 32, seconds))
            measured = {(case, c): [] for case in CASES for c in CONCURRENCY}
            for r in range(rounds):
                for c in CONCURRENCY:
                    for case, (url, adapters) in plan.items():
                        measured[case, c].append(measured_burst(url, adapters, c, requests, seconds))
                print(f"  round {r + 1}/{rounds} done ({time.perf_counter() - started:.0f} s)", flush=True)
            for server in (batched, unbatched):
                if server.proc.poll() is not None:
                    raise RuntimeError(f"a server died during the bench:\n{server.log()[-3000:]}")
        print("  model only, in process (no HTTP) ...", flush=True)
        in_process = model_only(tmp)
    rows = {f"{case}@{c}": _summary(b) for (case, c), b in measured.items()}
    time_goes = {case: where_time_goes(measured[case, 64]) for case in CASES}
    at64 = {case: rows[f"{case}@64"]["throughput_rps"] for case in CASES}
    result = {
        "mixed64_over_base_throughput": at64["mixed64"] / at64["base"],
        "mixed64_over_single_throughput": at64["mixed64"] / at64["single"],
        "flop_bound_over_base": flops["flop_bound_over_base"],
        "batched_over_unbatched_throughput": at64["mixed64"] / at64["mixed64_unbatched"],
        "where_time_goes": {
            **{case: time_goes[case] for case in ("mixed64", "mixed64_unbatched")},
            "model_only": in_process,
        },
    }
    details = {
        "model": model,
        "adapters": ADAPTERS,
        "rank": RANK,
        "max_length": MAX_LENGTH,
        "rounds": rounds,
        "requests_per_burst": requests,
        "seconds_per_burst": seconds,
        "flops": flops,
        "answers": answers,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "wall_seconds": time.perf_counter() - started,
        "rows": rows,
        "where_time_goes_at_64": time_goes,
        "targets": {
            "mixed64_over_single_throughput >= 0.9": result["mixed64_over_single_throughput"] >= 0.9,
            "mixed64_over_base_throughput >= 0.85 * flop_bound_over_base": result["mixed64_over_base_throughput"]
            >= 0.85 * result["flop_bound_over_base"],
            "batched_over_unbatched_throughput >= 4": result["batched_over_unbatched_throughput"] >= 4,
            "answers equal tailor predict (fp32)": answers["fp32"]["labels_equal"]
            and answers["fp32"]["max_abs_prob_diff"] < 1e-5,
        },
    }
    print(
        f"model only (in process, 64 rows): batched/row-by-row {in_process['batched_over_unbatched']:.2f}x, "
        f"bucketed/one padded batch {in_process['bucketed_over_one_padded_batch_speedup']:.2f}x"
    )
    return {**result, "details": details}


def markdown(result: dict) -> str:
    """The load-test tables (the CLI prints them and writes them to bench.md)."""
    return table(result["details"]) + "\n" + time_table(result["details"]["where_time_goes_at_64"])


def table(details: dict) -> str:
    lines = [
        "| case | concurrency | requests | throughput (req/s) | p50 (ms) | p99 (ms) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, row in details["rows"].items():
        case, c = key.split("@")
        lines.append(
            f"| {case} | {c} | {row['requests']} | {row['throughput_rps']:.1f} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['errors']} |"
        )
    return "\n".join(lines) + "\n"


def time_table(time_goes: dict) -> str:
    lines = [
        "| case @ 64 | forward | tokenize+pad+answer | outside the model | outside ms/request | forward ms/row | "
        "rows/batch | rows/forward | padded/real tokens |",
        "|---|" + "---:|" * 8,
    ]
    for case, t in time_goes.items():
        lines.append(
            f"| {case} | {t['forward_share']:.0%} | {t['tokenize_share'] + t['pad_share'] + t['answer_share']:.1%}"
            f" | {t['outside_model_share']:.0%} | {t['outside_model_ms_per_request']:.1f} | "
            f"{t['forward_ms_per_row']:.1f} | {t['rows_per_batch']:.1f} | {t['rows_per_forward']:.1f} | "
            f"{t['padded_over_real_tokens']:.2f} |"
        )
    return "\n".join(lines) + "\n"
