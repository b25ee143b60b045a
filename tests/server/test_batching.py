"""Model calls off the event loop, adaptively batched (server._batching), through the real app
under uvicorn on 127.0.0.1 and over HTTP with httpx."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import numpy as np
import pytest

from inferwatch.models import ModelPrediction
from inferwatch.schema import infer_schema
from inferwatch.server._batching import BatchSettings
from tests.server.conftest import AppFactory, Served, sample
from tests.server.test_live import LiveServer

SCHEMA = infer_schema({"x": np.arange(100, dtype=np.float64)})


class SlowDoubler:
    """A model whose every call takes ``delay`` seconds whatever the batch size (as a GPU
    model or a remote call does) and answers 2x; x = -1 makes it raise, x = -2 makes the
    call answer one prediction too few, x = -3 makes it sleep ``stall`` seconds."""

    flavor = "python"
    classes = None

    def __init__(self, delay: float = 0.0, stall: float = 1.0) -> None:
        self.delay = delay
        self.stall = stall
        self.calls: list[int] = []
        self.threads: set[str] = set()

    def predict(self, instances: Sequence[dict[str, Any]]) -> list[ModelPrediction]:
        self.calls.append(len(instances))
        self.threads.add(threading.current_thread().name)
        xs = [row["x"] for row in instances]
        if -1 in xs:
            raise ValueError("x = -1 breaks this model")
        time.sleep(self.stall if -3 in xs else self.delay)
        out = [ModelPrediction(2 * x) for x in xs]
        return out[:-1] if -2 in xs else out


def _serve(
    make_app: AppFactory, model: SlowDoubler, **batching: Any
) -> tuple[Served, LiveServer, str]:
    served = make_app(
        extra_models=[("slow", model, SCHEMA)], batching={"slow": BatchSettings(**batching)}
    )
    server = LiveServer(served)
    return served, server, server.start()


@pytest.fixture
def live_slow(make_app: AppFactory) -> Iterator[Any]:
    started: list[LiveServer] = []

    def start(model: SlowDoubler, **batching: Any) -> tuple[Served, str]:
        served, server, url = _serve(make_app, model, **batching)
        started.append(server)
        return served, url

    yield start
    for server in started:
        server.stop()


async def _predict(client: httpx.AsyncClient, x: float) -> httpx.Response:
    return await client.post("/v1/models/slow/predict", json={"instances": [{"x": x}]})


def test_concurrent_requests_share_model_calls_and_each_gets_its_own_answer(
    live_slow: Any,
) -> None:
    """16 clients, a model that takes 20 ms a call: calls are batched, every answer is the
    double of its own request, and the server answers far more than 1/20 ms requests a
    second (the acceptance figure, 300/s, is measured by bench/slow_model.py with wrk)."""
    model = SlowDoubler(delay=0.02)
    served, url = live_slow(model, max_batch_size=64, max_wait=0.002)
    per_client = 15

    async def client_loop(client: httpx.AsyncClient, k: int) -> list[tuple[float, Any]]:
        got = []
        for i in range(per_client):
            x = float(k * 100 + i)
            r = await _predict(client, x)
            assert r.status_code == 200, r.text
            got.append((x, r.json()["predictions"][0]["prediction"]))
        return got

    async def run() -> tuple[list[list[tuple[float, Any]]], float]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            t0 = time.perf_counter()
            answers = await asyncio.gather(*(client_loop(client, k) for k in range(16)))
            return answers, time.perf_counter() - t0

    answers, seconds = asyncio.run(run())
    assert all(pred == 2 * x for client in answers for x, pred in client)
    n = 16 * per_client
    assert sum(model.calls) == n
    # (requests/s depends on the machine: bench/slow_model.py measures it with wrk)
    assert len(model.calls) < n / 2, f"{model.calls}: {n / seconds:.0f} requests/s"
    assert model.threads == {"inferwatch-model-slow-0"}  # never the event loop's thread
    text = served.metrics_text()
    calls = sample(text, "inferwatch_model_batch_size_count", model="slow")
    rows = sample(text, "inferwatch_model_batch_size_sum", model="slow")
    assert (calls, rows) == (len(model.calls), n)
    assert sample(text, "inferwatch_queue_duration_seconds_count", model="slow") == n
    assert sample(text, "inferwatch_requests_total", model="slow", status="200") == n


def test_a_lone_request_is_not_held_for_the_batch_wait(live_slow: Any) -> None:
    """max_wait is half a second, but requests one at a time, 50 ms apart, are answered at
    once: the worker waits for company only while requests arrive faster than the wait."""
    model = SlowDoubler()
    _, url = live_slow(model, max_wait=0.5)
    with httpx.Client(base_url=url, timeout=30) as client:
        times = []
        for i in range(8):
            t0 = time.perf_counter()
            r = client.post("/v1/models/slow/predict", json={"instances": [{"x": i}]})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200
            time.sleep(0.6)  # quieter than the wait: no company expected
    assert max(times) < 0.25, times
    assert model.calls == [1] * 8


def test_a_failing_request_fails_alone_in_its_batch(live_slow: Any) -> None:
    """A batch holding one request that breaks the model: each request is retried alone,
    so only the breaking request gets the 500 (and the one answering too few predictions)."""
    model = SlowDoubler(delay=0.05)
    served, url = live_slow(model, max_wait=0.05)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            first = asyncio.create_task(_predict(client, 1.0))  # keeps the worker busy
            await asyncio.sleep(0.01)
            rest = [asyncio.create_task(_predict(client, x)) for x in (2.0, -1.0, 3.0, -2.0, 4.0)]
            return [await first, *await asyncio.gather(*rest)]

    first, *rest = asyncio.run(run())
    assert first.status_code == 200
    status = [r.status_code for r in rest]
    assert status == [200, 500, 200, 500, 200]
    for r in (rest[1], rest[3]):
        error = r.json()["error"]
        assert error["code"] == "model_error" and "Traceback" not in r.text
    assert "predictions for 1 instances" in rest[3].json()["error"]["message"]
    assert [r.json()["predictions"][0]["prediction"] for r in rest[::2]] == [4.0, 6.0, 8.0]
    assert any(n > 1 for n in model.calls)  # they were batched first
    assert (
        sample(served.metrics_text(), "inferwatch_requests_total", model="slow", status="500") == 2
    )


def test_timeout_answers_504_and_the_server_keeps_serving(live_slow: Any) -> None:
    model = SlowDoubler(stall=1.0)
    served, url = live_slow(model, timeout=0.2)
    with httpx.Client(base_url=url, timeout=30) as client:
        t0 = time.perf_counter()
        r = client.post("/v1/models/slow/predict", json={"instances": [{"x": -3}]})
        took = time.perf_counter() - t0
        assert r.status_code == 504 and r.json()["error"]["code"] == "model_timeout"
        assert took < 0.8
        assert client.get("/healthz").status_code == 200
        ok = client.post("/v1/models/churn/predict", json={"instances": [GOOD]})
        assert ok.status_code == 200  # other models are not held up
        time.sleep(1.0)  # the stalled call ends; its answer is dropped
        r = client.post("/v1/models/slow/predict", json={"instances": [{"x": 5}]})
        assert r.status_code == 200 and r.json()["predictions"][0]["prediction"] == 10.0
    assert (
        sample(served.metrics_text(), "inferwatch_requests_total", model="slow", status="504") == 1
    )


GOOD = {"age": 41, "income": 52_000.5, "plan": "basic"}


def test_past_the_queue_bound_requests_get_503_with_retry_after(live_slow: Any) -> None:
    model = SlowDoubler(stall=0.5)
    served, url = live_slow(model, max_queue=2)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            first = asyncio.create_task(_predict(client, -3))  # the worker is busy 0.5 s
            await asyncio.sleep(0.1)
            waiting = [asyncio.create_task(_predict(client, float(x))) for x in range(4)]
            return [await first, *await asyncio.gather(*waiting)]

    first, *rest = asyncio.run(run())
    assert first.status_code == 200
    codes = sorted(r.status_code for r in rest)
    assert codes == [200, 200, 503, 503], (codes, model.calls)
    refused = next(r for r in rest if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "overloaded"
    assert (
        sample(served.metrics_text(), "inferwatch_requests_total", model="slow", status="503") == 2
    )


def test_healthz_answers_while_the_model_is_busy(live_slow: Any) -> None:
    """The model takes 300 ms a call and 16 clients keep it busy: /healthz and the metrics
    stay fast, because no model call runs on the event loop."""
    model = SlowDoubler(delay=0.3)
    _, url = live_slow(model, max_batch_size=4)

    async def run() -> list[float]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            stop = asyncio.Event()

            async def load() -> None:
                while not stop.is_set():
                    await _predict(client, 1.0)

            tasks = [asyncio.create_task(load()) for _ in range(16)]
            await asyncio.sleep(0.4)
            took = []
            async with httpx.AsyncClient(base_url=url, timeout=30) as probe:
                for _ in range(10):
                    t0 = time.perf_counter()
                    assert (await probe.get("/healthz")).status_code == 200
                    took.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)
            return took

    took = asyncio.run(run())
    assert sorted(took)[-2] < 0.1, took  # the slowest but one; the machine may be shared
