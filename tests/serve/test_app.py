"""The HTTP endpoints through FastAPI's in-process TestClient: answers, adapter management, metrics,
and a burst of bad requests that leaves the server answering good ones correctly."""

import json

import pytest
from fastapi.testclient import TestClient

from tailor.serve.app import create_app
from tailor.serve.commands import open_registry

from .conftest import LABELS, alone


def _client(zoo_adapters, **kwargs):
    registry = open_registry(
        str(zoo_adapters["base"].path),
        [f"{n}={d}" for n, d in zoo_adapters["dirs"].items()],
        overlength=kwargs.pop("overlength", "truncate"),
        max_length=kwargs.pop("max_length", None),
        precision="fp32",  # answers are compared with each adapter alone in fp32, to 1e-5
    )
    return TestClient(create_app(registry, **kwargs))


@pytest.fixture()
def client(zoo_adapters):
    with _client(zoo_adapters, max_body_bytes=4096, max_inputs=8) as c:
        yield c


def _good(client, zoo_adapters):
    r = client.post("/v1/classify", json={"adapter": "vera1", "text": "vote early"})
    assert r.status_code == 200, r.text
    assert list(r.json()["probs"].values()) == pytest.approx(
        alone(zoo_adapters["models"]["vera1"], "vote early"), abs=1e-5
    )
    r = client.post("/v1/classify", json={"adapter": "lora0", "inputs": ["a", "zz top"]})
    assert r.status_code == 200, r.text
    for text, answer in zip(["a", "zz top"], r.json()["results"]):
        assert list(answer["probs"]) == LABELS["lora0"]
        assert list(answer["probs"].values()) == pytest.approx(alone(zoo_adapters["models"]["lora0"], text), abs=1e-5)


def test_classify_list_health_and_metrics(client, zoo_adapters):
    _good(client, zoo_adapters)
    body = client.post("/v1/classify", json={"adapter": "vera0", "text": "hi"}).json()
    assert body["adapter"] == "vera0" and body["label"] == LABELS["vera0"][body["label_id"]]
    assert client.post("/v1/classify", json={"adapter": None, "text": "hi"}).json()["label"].startswith("LABEL_")
    listed = client.get("/v1/adapters").json()["adapters"]
    assert [(a["name"], a["kind"]) for a in listed] == [("vera0", "vera"), ("vera1", "vera"), ("lora0", "lora")]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["adapters"] == 3 and health["precision"] in ("fp32", "bf16")
    metrics = client.get("/metrics").text
    assert 'tailor_serve_requests_total{route="/v1/classify",status="200"} 4.0' in metrics
    assert "tailor_serve_batch_rows_count" in metrics and "tailor_serve_adapters_loaded 3.0" in metrics
    assert 'tailor_serve_request_seconds_bucket{le="+Inf",route="/v1/classify"} 4.0' in metrics
    assert "tailor_serve_batch_rows_sum 5.0" in metrics  # 1 + 2 + 1 + 1 rows
    assert 'tailor_serve_requests_total{route="/v1/adapters",status="200"} 1.0' in metrics
    model = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith(
            ("tailor_serve_model_seconds_total", "tailor_serve_tokens_total", "tailor_serve_forwards_total")
        )
    }
    assert model["tailor_serve_forwards_total"] >= 4 and model['tailor_serve_model_seconds_total{phase="forward"}'] > 0
    assert 0 < model['tailor_serve_tokens_total{kind="real"}'] <= model['tailor_serve_tokens_total{kind="padded"}']


def test_load_and_unload_at_run_time(client, zoo_adapters):
    r = client.post("/v1/adapters", json={"path": str(zoo_adapters["dirs"]["vera0"]), "name": "copy"})
    assert r.status_code == 422 and "adapter name 'copy'" in r.json()["detail"]  # a ModuleDict attribute
    r = client.post("/v1/adapters", json={"path": str(zoo_adapters["dirs"]["vera0"]), "name": "vera0-copy"})
    assert r.status_code == 201 and r.json()["name"] == "vera0-copy"
    r = client.post("/v1/classify", json={"adapter": "vera0-copy", "text": "hi"})
    assert list(r.json()["probs"].values()) == pytest.approx(alone(zoo_adapters["models"]["vera0"], "hi"), abs=1e-5)
    assert client.delete("/v1/adapters/vera0-copy").json()["unloaded"]["name"] == "vera0-copy"
    r = client.post("/v1/classify", json={"adapter": "vera0-copy", "text": "hi"})
    assert r.status_code == 404 and "loaded: ['vera0', 'vera1', 'lora0']" in r.json()["detail"]
    assert client.delete("/v1/adapters/vera0-copy").status_code == 404
    r = client.post("/v1/adapters", json={"path": str(zoo_adapters["foreign"])})
    assert r.status_code == 400 and "other-base" in r.json()["detail"]
    assert (
        client.post("/v1/adapters", json={"path": str(zoo_adapters["dirs"]["lora0"]), "name": "lora0"}).status_code
        == 409
    )


def test_adapter_root_limits_what_may_be_loaded(zoo_adapters, tmp_path):
    with _client(zoo_adapters, adapter_root=str(tmp_path)) as c:
        r = c.post("/v1/adapters", json={"path": str(zoo_adapters["dirs"]["vera0"]), "name": "x"})
        assert r.status_code == 403 and "outside the adapter root" in r.json()["detail"]


def _field(response) -> list:
    return [e["loc"] for e in response.json()["detail"]]


def test_bad_requests_get_the_right_status_and_name_the_field(client):
    r = client.post("/v1/classify", json={"adapter": "nobody", "text": "x"})
    assert r.status_code == 404 and "unknown adapter 'nobody'; loaded: ['vera0', 'vera1', 'lora0']" in r.text
    r = client.post(
        "/v1/classify", content=b'{"adapter": "vera0", "text": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = client.post("/v1/classify", json={"adapter": "vera0", "txt": "x"})
    assert r.status_code == 422 and ["body", "txt"] in _field(r)
    r = client.post("/v1/classify", json={"adapter": "vera0", "text": 5})
    assert r.status_code == 422 and ["body", "text"] in _field(r)
    r = client.post("/v1/classify", json={"text": "x"})
    assert r.status_code == 422 and ["body", "adapter"] in _field(r)
    r = client.post("/v1/classify", json={"adapter": "vera0", "text": "x", "inputs": ["y"]})
    assert r.status_code == 422 and "exactly one of 'text'" in r.text
    r = client.post("/v1/classify", json={"adapter": "vera0", "inputs": ["y"] * 9})
    assert r.status_code == 422 and ["body", "inputs"] in _field(r) and "at most 8 inputs" in r.text
    r = client.post("/v1/classify", json={"adapter": "vera0", "text": "x" * 5000})
    assert r.status_code == 413 and "over the limit of 4096 bytes" in r.text


def test_body_limit_holds_without_a_content_length(client):
    chunks = (b'{"adapter": "vera0", "text": "' + b"x" * 1000 + b'"' if i == 0 else b" " * 1000 for i in range(6))
    r = client.post("/v1/classify", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_overlength_text_is_rejected_when_so_configured(zoo_adapters):
    with _client(zoo_adapters, overlength="reject", max_length=8) as c:
        r = c.post("/v1/classify", json={"adapter": "vera0", "inputs": ["short", "word " * 50]})
        assert r.status_code == 413 and "over the limit of 8" in r.json()["detail"]
        assert c.post("/v1/classify", json={"adapter": "vera0", "text": "short"}).status_code == 200


def test_a_burst_of_bad_requests_leaves_good_ones_answered(client, zoo_adapters):
    bad = [
        ("post", "/v1/classify", {"json": {"adapter": "nobody", "text": "x"}}, 404),
        ("post", "/v1/classify", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("post", "/v1/classify", {"json": {"adapter": "vera0"}}, 422),
        ("post", "/v1/classify", {"json": {"adapter": "vera0", "inputs": []}}, 422),
        ("post", "/v1/classify", {"json": {"adapter": ["vera0"], "text": "x"}}, 422),
        ("post", "/v1/classify", {"json": {"adapter": "vera0", "text": "é" * 4000}}, 413),
        ("post", "/v1/classify", {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}}, 400),
        ("post", "/v1/adapters", {"json": {"path": "/nonexistent/adapter"}}, 400),
        ("post", "/v1/adapters", {"json": {"path": str(zoo_adapters["foreign"])}}, 400),
        ("delete", "/v1/adapters/nobody", {}, 404),
        ("get", "/v1/nothing", {}, 404),
    ]
    for _ in range(5):
        for method, url, kwargs, status in bad:
            r = getattr(client, method)(url, **kwargs)
            assert r.status_code == status, (url, kwargs, r.text)
    _good(client, zoo_adapters)
    assert client.get("/health").json()["adapters"] == 3
    assert json.loads(client.get("/v1/adapters").text)["adapters"][0]["name"] == "vera0"
