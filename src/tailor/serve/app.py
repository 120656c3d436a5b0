"""The FastAPI application of `tailor serve`.

FastAPI validates request bodies (malformed JSON or a wrong field -> 422 naming the field);
prometheus_client keeps the metrics; written here are the endpoints, the status each failure
maps to, and a body-size limit (Starlette has none).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .batcher import Batcher
from .registry import AdapterRefused, Registry, TextTooLong, UnknownAdapter

PHASES = ("tokenize", "pad", "forward", "answer")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ClassifyRequest(BaseModel):
    """``adapter`` names a loaded adapter (``null``: the bare base); give ``text`` or ``inputs``."""

    model_config = ConfigDict(extra="forbid")
    adapter: str | None
    text: str | None = None
    inputs: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_of_text_or_inputs(self):
        if (self.text is None) == (self.inputs is None):
            raise ValueError("give exactly one of 'text' (a string) or 'inputs' (a list of strings)")
        return self


class LoadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    name: str | None = Field(None, description="default: the folder's name")


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by its Content-Length or as it streams in."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = Response(
                f'{{"detail": "request body over the limit of {self.limit} bytes"}}', 413, media_type="application/json"
            )
            return await response(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # FastAPI re-raises an HTTPException met while reading the body
                raise HTTPException(413, f"request body over the limit of {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


class Observe:
    """ASGI middleware counting requests by route and status and timing them (a plain ASGI wrapper:
    Starlette's ``@app.middleware("http")`` runs each request through an extra task and stream)."""

    def __init__(self, app, requests: Counter, latency: Histogram):
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def sent(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # the router sets it on the scope
            self.requests.labels(route, str(status[0])).inc()
            self.latency.labels(route).observe(time.perf_counter() - start)


class ModelStats:
    """Prometheus collector over the registry's own counters: worker seconds per phase, tokens, forwards."""

    def __init__(self, registry: Registry):
        self.stats = registry.stats

    def collect(self):
        seconds = CounterMetricFamily("tailor_serve_model_seconds", "model worker seconds by phase", labels=["phase"])
        for phase in PHASES:
            seconds.add_metric([phase], self.stats[f"{phase}_seconds"])
        tokens = CounterMetricFamily(
            "tailor_serve_tokens", "tokens through the model: real, or padded (computed)", labels=["kind"]
        )
        for kind in ("real", "padded"):
            tokens.add_metric([kind], self.stats[f"{kind}_tokens"])
        yield seconds
        yield tokens
        yield CounterMetricFamily(
            "tailor_serve_forwards", "model forward calls (one per length bucket)", value=self.stats["forwards"]
        )


def create_app(
    registry: Registry,
    max_batch: int = 64,
    window_ms: float = 5.0,
    max_body_bytes: int = 1 << 20,
    max_inputs: int = 256,
    adapter_root: str | None = None,
) -> FastAPI:
    """The app serving ``registry``; ``adapter_root`` (if set) is the only tree POST /v1/adapters may load from."""
    metrics = CollectorRegistry()
    requests = Counter(
        "tailor_serve_requests", "HTTP requests by route and status", ("route", "status"), registry=metrics
    )
    latency = Histogram(
        "tailor_serve_request_seconds",
        "request latency by route",
        ("route",),
        buckets=LATENCY_BUCKETS,
        registry=metrics,
    )
    batch_rows = Histogram("tailor_serve_batch_rows", "rows per model batch", buckets=BATCH_BUCKETS, registry=metrics)
    Gauge("tailor_serve_adapters_loaded", "adapters loaded", registry=metrics).set_function(
        lambda: len(registry.adapters)
    )
    metrics.register(ModelStats(registry))
    batcher = Batcher(registry.run, max_batch, window_ms / 1000, on_batch=batch_rows.observe)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="tailor serve", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(Observe, requests=requests, latency=latency)  # outermost: 413s are counted too
    app.state.registry, app.state.batcher = registry, batcher

    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest):
        if body.adapter is not None and body.adapter not in registry.adapters:
            raise HTTPException(404, str(UnknownAdapter(body.adapter, list(registry.adapters))))
        texts = [body.text] if body.text is not None else body.inputs
        if len(texts) > max_inputs:
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["body", "inputs"],
                        "type": "too_long",
                        "msg": f"at most {max_inputs} inputs per request, got {len(texts)}",
                    }
                ],
            )
        answers = await batcher.submit([(body.adapter, t) for t in texts])
        for answer in answers:
            if isinstance(answer, UnknownAdapter):
                raise HTTPException(404, str(answer))
            if isinstance(answer, TextTooLong):
                raise HTTPException(413, str(answer))
            if isinstance(answer, Exception):
                raise answer
        if body.text is not None:
            return {"adapter": body.adapter, **answers[0]}
        return {"adapter": body.adapter, "results": answers}

    @app.get("/v1/adapters")
    async def list_adapters():
        return {"adapters": [a.as_dict() for a in registry.adapters.values()]}

    @app.post("/v1/adapters", status_code=201)
    async def load_adapter(body: LoadRequest):
        path = Path(body.path).expanduser().resolve()
        if adapter_root is not None and not path.is_relative_to(Path(adapter_root).resolve()):
            raise HTTPException(403, f"{path} is outside the adapter root {adapter_root}")
        try:
            info = await batcher.call(registry.load, path, body.name or path.name)
        except AdapterRefused as err:
            raise HTTPException(err.status, str(err)) from None
        return info.as_dict()

    @app.delete("/v1/adapters/{name}")
    async def unload_adapter(name: str):
        try:
            info = await batcher.call(registry.unload, name)
        except UnknownAdapter as err:
            raise HTTPException(404, str(err)) from None
        return {"unloaded": info.as_dict()}

    @app.get("/health")
    async def health():
        return {
            "status": "ok",
            "adapters": len(registry.adapters),
            "max_batch": max_batch,
            "batch_window_ms": window_ms,
            **registry.describe(),
        }

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return app
