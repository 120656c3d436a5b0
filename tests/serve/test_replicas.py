"""Scale-out: replicas of `tailor serve` are interchangeable behind a load balancer, because a
replica's only state is the set of adapters it loaded. Two replicas on loopback ports, a tiny
round-robin client, and an adapter loaded on every replica at run time."""

import itertools
import re

import httpx
import pytest

from tailor.serve.process import ServerProcess

from .conftest import alone

pytestmark = pytest.mark.slow


class RoundRobin:
    """The smallest load balancer: each request goes to the next replica in turn."""

    def __init__(self, urls: list[str]):
        self.urls, self._next = urls, itertools.cycle(urls)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(next(self._next) + path, timeout=60, **kwargs)

    def broadcast(self, method: str, path: str, **kwargs) -> list[httpx.Response]:
        """Adapter loads and unloads go to every replica, so all keep the same adapters."""
        return [httpx.request(method, url + path, timeout=120, **kwargs) for url in self.urls]


def _served(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    match = re.search(r'tailor_serve_requests_total\{route="/v1/classify",status="200"\} ([0-9.]+)', text)
    return float(match.group(1)) if match else 0.0


def test_two_replicas_answer_alike_and_share_the_traffic(zoo_adapters):
    dirs, models = zoo_adapters["dirs"], zoo_adapters["models"]
    adapters = ["--adapters", f"vera0={dirs['vera0']}", f"lora0={dirs['lora0']}"]
    args = ["--base", str(zoo_adapters["base"].path), *adapters, "--precision", "fp32"]  # compared in fp32
    with ServerProcess(args) as one, ServerProcess(args) as two:
        balancer = RoundRobin([one.url, two.url])
        for i in range(6):
            name = ("vera0", "lora0")[i % 2]
            r = balancer.post("/v1/classify", json={"adapter": name, "text": f"text number {i}"})
            assert list(r.json()["probs"].values()) == pytest.approx(alone(models[name], f"text number {i}"), abs=1e-5)
        assert _served(one.url) == _served(two.url) == 3
        assert [
            r.status_code for r in balancer.broadcast("POST", "/v1/adapters", json={"path": str(dirs["vera1"])})
        ] == [201, 201]
        for _ in range(2):
            r = balancer.post("/v1/classify", json={"adapter": "vera1", "text": "hi"})
            assert list(r.json()["probs"].values()) == pytest.approx(alone(models["vera1"], "hi"), abs=1e-5)
