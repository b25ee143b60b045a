"""Realistic traffic for the demo: good batches, a share of malformed requests, then drift.

Bounded by construction: it sends at most ``rate`` requests a second and stops when its
event is set.  Malformed requests cover each rejection reason the server counts.  Ground
truth comes back late, as it does in production: the true outcome of ``label_share`` of
the answered predictions is posted to ``/feedback`` by prediction id ``label_delay``
seconds after the prediction (the drift moves the inputs only, so the model's realised
accuracy should stay near its estimate: covariate shift, not concept drift).
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

from inferwatch.demo._data import TARGET, make_customers, to_instances

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
    labels_sent: int = 0
    labels_accepted: int = 0

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
        label_share: float = 0.6,
        label_delay: float = 3.0,
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
        self.label_share = label_share
        self.label_delay = label_delay
        # (due time, [(prediction id, true outcome), ...]) of answered requests
        self._pending: deque[tuple[float, list[tuple[str, str]]]] = deque()
        self._truth: list[str] = []

    def drift(self) -> float:
        """Current drift level in [0, 1]."""
        elapsed = time.monotonic() - self.started_at - self.drift_after
        return float(min(max(elapsed / self.drift_ramp, 0.0), 1.0))

    def _good(self) -> tuple[str, bytes, int]:
        n = int(self.rng.integers(1, 9))
        frame = make_customers(n, self.rng, self.drift())
        self._truth = [str(v) for v in frame[TARGET]]
        instances = to_instances(frame)
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
                self._send_labels(client)
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
                answered = resp.json()["predictions"]
                s.accepted += len(answered)
                s.latencies.append(elapsed)
                if n and len(answered) == len(self._truth):
                    keep = [
                        (item["id"], truth)
                        for item, truth in zip(answered, self._truth, strict=True)
                        if self.rng.random() < self.label_share
                    ]
                    if keep:
                        self._pending.append((time.monotonic() + self.label_delay, keep))
            elif 400 <= resp.status_code < 500:
                s.rejected += 1
                s.rejected_by_code[_error_code(resp)] += 1
            else:
                s.errors += 1

    def _send_labels(self, client: httpx.Client) -> None:
        """Post the outcomes that are due, in one feedback request."""
        now = time.monotonic()
        due: list[tuple[str, str]] = []
        while self._pending and self._pending[0][0] <= now:
            due.extend(self._pending.popleft()[1])
        if not due:
            return
        body = {"labels": [{"prediction_id": i, "label": y} for i, y in due]}
        try:
            resp = client.post(f"/v1/models/{self.model}/feedback", json=body)
        except httpx.HTTPError:
            return
        with self._lock:
            self.stats.labels_sent += len(due)
            if resp.status_code in (200, 207):
                payload = resp.json()
                self.stats.labels_accepted += int(payload.get("accepted", 0)) + int(
                    payload.get("replaced", 0)
                )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            s = self.stats
            return {
                "requests": s.requests,
                "ok_requests": s.ok_requests,
                "accepted": s.accepted,
                "rejected": s.rejected,
                "errors": s.errors,
                "labels_sent": s.labels_sent,
                "labels_accepted": s.labels_accepted,
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
