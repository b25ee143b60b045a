"""Realistic traffic for the demo: good batches, a share of malformed requests, then drift.

Bounded by construction: it sends at most ``rate`` requests a second and stops when its
event is set.  Malformed requests cover each rejection reason the server counts.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from inferwatch.demo._data import make_customers, to_instances

__all__ = ["TrafficGenerator", "TrafficStats"]

BAD_KINDS = (
    "missing_feature",
    "wrong_type",
    "unknown_feature",
    "nan",
    "infinity",
    "empty_batch",
    "malformed_json",
    "unknown_model",
)


@dataclass
class TrafficStats:
    """What the client saw.  ``accepted`` counts predictions (instances) answered 200."""

    requests: int = 0
    ok_requests: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))

    def latency_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        return float(np.quantile(np.fromiter(self.latencies, float), q) * 1000)


class TrafficGenerator:
    """Sends predict requests to ``base_url`` until ``stop`` is set."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        rate: float = 20.0,
        bad_share: float = 0.08,
        drift_after: float = 20.0,
        drift_ramp: float = 10.0,
        seed: int = 11,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.rate = rate
        self.bad_share = bad_share
        self.drift_after = drift_after
        self.drift_ramp = drift_ramp
        self.rng = np.random.default_rng(seed)
        self.headers = headers or {}
        self.stats = TrafficStats()
        self.stop = threading.Event()
        self.started_at = time.monotonic()
        self._lock = threading.Lock()

    def drift(self) -> float:
        """Current drift level in [0, 1]."""
        elapsed = time.monotonic() - self.started_at - self.drift_after
        return float(min(max(elapsed / self.drift_ramp, 0.0), 1.0))

    def _good(self) -> tuple[str, bytes, int]:
        n = int(self.rng.integers(1, 9))
        instances = to_instances(make_customers(n, self.rng, self.drift()))
        return self.model, json.dumps({"instances": instances}).encode(), n

    def _bad(self) -> tuple[str, bytes, int]:
        kind = BAD_KINDS[int(self.rng.integers(len(BAD_KINDS)))]
        inst = to_instances(make_customers(1, self.rng, self.drift()))[0]
        model = self.model
        if kind == "missing_feature":
            del inst["income"]
        elif kind == "wrong_type":
            inst["age"] = "forty-two"
        elif kind == "unknown_feature":
            inst["favourite_colour"] = "teal"
        elif kind == "nan":
            inst["monthly_spend"] = float("nan")
        elif kind == "infinity":
            inst["income"] = float("inf")
        elif kind == "unknown_model":
            model = "no-such-model"
        if kind == "empty_batch":
            return model, b'{"instances": []}', 0
        if kind == "malformed_json":
            return model, b'{"instances": [{"age": 41,', 0
        return model, json.dumps({"instances": [inst]}).encode(), 0  # NaN/Infinity tokens

    def run(self) -> None:
        """Send requests until stopped (call in a thread)."""
        self.started_at = time.monotonic()
        interval = 1.0 / self.rate
        headers = {"content-type": "application/json", **self.headers}
        with httpx.Client(base_url=self.base_url, timeout=10.0, headers=headers) as client:
            next_at = time.monotonic()
            while not self.stop.is_set():
                bad = self.rng.random() < self.bad_share
                model, body, n = self._bad() if bad else self._good()
                self._send(client, model, body, n)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)
                else:
                    next_at = time.monotonic()

    def _send(self, client: httpx.Client, model: str, body: bytes, n: int) -> None:
        t0 = time.perf_counter()
        try:
            resp = client.post(f"/v1/models/{model}/predict", content=body)
        except httpx.HTTPError:
            with self._lock:
                self.stats.requests += 1
                self.stats.errors += 1
            return
        elapsed = time.perf_counter() - t0
        with self._lock:
            s = self.stats
            s.requests += 1
            if resp.status_code == 200:
                s.ok_requests += 1
                s.accepted += len(resp.json()["predictions"])
                s.latencies.append(elapsed)
            elif 400 <= resp.status_code < 500:
                s.rejected += 1
                s.rejected_by_code[_error_code(resp)] += 1
            else:
                s.errors += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            s = self.stats
            return {
                "requests": s.requests,
                "ok_requests": s.ok_requests,
                "accepted": s.accepted,
                "rejected": s.rejected,
                "errors": s.errors,
                "rejected_by_code": dict(sorted(s.rejected_by_code.items())),
                "latency_p50_ms": _round(s.latency_ms(0.5)),
                "latency_p95_ms": _round(s.latency_ms(0.95)),
                "drift": round(self.drift(), 2),
            }


def _error_code(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{resp.status_code}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
