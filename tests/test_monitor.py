"""The Monitor: metrics on log, batched write-behind, backpressure, flush and close."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from inferwatch.errors import StoreError
from inferwatch.metrics import Metrics
from inferwatch.monitor import Monitor
from inferwatch.observation import PredictionRecord
from inferwatch.store import MemoryStore


class RecordingSink:
    """A sink that records batch sizes and can be made to fail or stall."""

    def __init__(self, fail_times: int = 0, gate: threading.Event | None = None) -> None:
        self.rows: list[PredictionRecord] = []
        self.batches: list[int] = []
        self.fail_times = fail_times
        self.gate = gate

    def write_predictions(self, records: Sequence[PredictionRecord]) -> int:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise StoreError("store down")
        self.batches.append(len(records))
        self.rows.extend(records)
        return len(records)


def test_log_returns_ids_and_rows_land_after_flush() -> None:
    store = MemoryStore()
    mon = Monitor(store, flush_interval=0.05)
    ids = mon.log("m", "1", [{"x": 1}, {"x": 2}], ["a", "b"], scores=[0.9, 0.6])
    assert len(ids) == 2
    assert len(set(ids)) == 2
    assert mon.flush(5)
    assert store.count_predictions("m", "1") == 2
    got = store.get_prediction(ids[1])
    assert got is not None
    assert got.inputs == {"x": 2}
    assert got.output == "b"
    assert got.score == 0.6
    assert mon.close()


def test_given_ids_and_timestamps_are_kept() -> None:
    store = MemoryStore()
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with Monitor(store) as mon:
        mon.log("m", "1", [{"x": 1}], [0.5], ids=["abc"], timestamps=[ts], trace_id="t1")
    rec = store.get_prediction("abc")
    assert rec is not None
    assert rec.timestamp == ts
    assert rec.trace_id == "t1"


def test_length_mismatch_is_an_error() -> None:
    mon = Monitor(MemoryStore())
    with pytest.raises(ValueError, match="outputs has 1 items but inputs has 2"):
        mon.log("m", "1", [{"x": 1}, {"x": 2}], ["a"])
    mon.close()


def test_writes_are_batched() -> None:
    sink = RecordingSink()
    mon = Monitor(sink, batch_size=100, flush_interval=10.0)
    for _ in range(10):
        mon.log("m", "1", [{"x": i} for i in range(50)], list(range(50)))
    assert mon.close(10)
    assert len(sink.rows) == 500
    assert max(sink.batches) <= 100
    assert len(sink.batches) <= 10  # 500 rows in batches, not one insert per row


def test_close_drains_everything_and_rejects_later_logs() -> None:
    sink = RecordingSink()
    mon = Monitor(sink, batch_size=1000, flush_interval=60.0)
    for i in range(37):
        mon.log("m", "1", [{"x": i}], [i])
    assert mon.close(10)
    assert len(sink.rows) == 37
    with pytest.raises(RuntimeError, match="closed"):
        mon.log("m", "1", [{"x": 1}], [1])


def test_store_errors_are_retried_then_written() -> None:
    sink = RecordingSink(fail_times=2)
    mon = Monitor(sink, flush_interval=0.01, retry_seconds=10)
    mon.log("m", "1", [{"x": 1}], [1])
    assert mon.flush(10)
    assert len(sink.rows) == 1
    assert mon.stats.failed == 0
    mon.close()


def test_a_store_down_for_good_counts_failed_rows() -> None:
    sink = RecordingSink(fail_times=10**6)
    registry = CollectorRegistry()
    mon = Monitor(sink, metrics=Metrics(registry, process=False), retry_seconds=0.2)
    mon.log("m", "1", [{"x": 1}, {"x": 2}], [1, 2])
    assert mon.flush(10)
    assert mon.stats.failed == 2
    assert (
        registry.get_sample_value("inferwatch_prediction_log_rows_total", {"outcome": "failed"})
        == 2
    )
    assert not mon.close()


def test_full_buffer_blocks_then_drops_and_counts() -> None:
    gate = threading.Event()
    sink = RecordingSink(gate=gate)
    registry = CollectorRegistry()
    mon = Monitor(
        sink,
        metrics=Metrics(registry, process=False),
        queue_size=10,
        batch_size=10,
        enqueue_timeout=0.2,
        flush_interval=0.01,
    )
    mon.log("m", "1", [{"x": i} for i in range(10)], list(range(10)))
    time.sleep(0.1)  # the writer takes the first 10 and stalls on the gate
    mon.log("m", "1", [{"x": i} for i in range(10)], list(range(10)))  # fills the buffer
    t0 = time.monotonic()
    mon.log("m", "1", [{"x": i} for i in range(5)], list(range(5)))  # no room: waits, drops
    assert time.monotonic() - t0 >= 0.15
    assert mon.stats.dropped == 5
    assert (
        registry.get_sample_value("inferwatch_prediction_log_rows_total", {"outcome": "dropped"})
        == 5
    )
    gate.set()
    mon.close(10)
    assert len(sink.rows) == 20


def test_metrics_hook_sees_every_batch() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, process=False)
    metrics.for_model("m", "1", ["a", "b"])
    mon = Monitor(MemoryStore(), metrics=metrics)
    mon.log("m", "1", [{"x": 1}] * 3, ["a", "b", "a"], scores=[0.9, 0.8, 0.7])
    mon.close()
    labels = {"model": "m", "version": "1", "predicted_class": "a"}
    assert registry.get_sample_value("inferwatch_predictions_total", labels) == 2
    assert (
        registry.get_sample_value("inferwatch_prediction_log_rows_total", {"outcome": "written"})
        == 3
    )


def test_concurrent_loggers_lose_nothing() -> None:
    store = MemoryStore()
    mon = Monitor(store, batch_size=64, flush_interval=0.01)

    def worker(k: int) -> None:
        for i in range(200):
            mon.log("m", "1", [{"k": k, "i": i}], [i])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert mon.close(30)
    assert store.count_predictions() == 800


def test_from_settings_migrates_the_store_and_writes(tmp_path: Path) -> None:
    from inferwatch.config import load_settings
    from inferwatch.store import SQLStore

    url = f"sqlite:///{tmp_path / 'm.db'}"
    registry = CollectorRegistry()
    mon = Monitor.from_settings(
        load_settings(None, {"store": {"url": url, "batch_size": 7}}), registry=registry
    )
    assert mon.batch_size == 7
    mon.log("m", "1", [{"x": 1}], ["a"])
    assert mon.close()
    store = SQLStore(url)
    assert store.current_revision() == store.head_revision()
    assert store.count_predictions("m") == 1
    store.close()
    assert (
        registry.get_sample_value("inferwatch_prediction_log_rows_total", {"outcome": "written"})
        == 1
    )


# -- the window-profile hook -----------------------------------------------------------


class RecordingProfiler:
    """Records which thread fed it which batches; can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, int, str]] = []
        self.fail = fail

    def add(self, model: str, version: str, records: Sequence[PredictionRecord]) -> None:
        assert all((r.model, r.version) == (model, version) for r in records)
        self.calls.append((model, version, len(records), threading.current_thread().name))
        if self.fail:
            raise RuntimeError("profile bug")


def test_the_profiler_gets_whole_batches_in_the_writer_thread() -> None:
    profiler = RecordingProfiler()
    mon = Monitor(MemoryStore(), batch_size=500, flush_interval=10.0, profiler=profiler)
    for i in range(1000):  # one row per request: no profiling on the request path
        mon.log("m", "1", [{"x": i}], [i])
        assert profiler.calls == [] or all(c[3] == "inferwatch-log-writer" for c in profiler.calls)
    assert mon.close(10)

    assert sum(c[2] for c in profiler.calls) == 1000
    assert len(profiler.calls) <= 3  # batches of up to 500 rows, not 1000 calls
    assert {c[3] for c in profiler.calls} == {"inferwatch-log-writer"}


def test_a_mixed_batch_is_split_by_model_version() -> None:
    profiler = RecordingProfiler()
    mon = Monitor(MemoryStore(), batch_size=1000, flush_interval=10.0, profiler=profiler)
    mon.log("a", "1", [{"x": 1}] * 3, [1] * 3)
    mon.log("b", "1", [{"x": 1}] * 2, [1] * 2)
    mon.log("a", "2", [{"x": 1}] * 4, [1] * 4)
    mon.log("a", "1", [{"x": 1}], [1])
    assert mon.close(10)

    got = {(m, v): n for m, v, n, _ in profiler.calls}
    assert got == {("a", "1"): 4, ("b", "1"): 2, ("a", "2"): 4}


def test_profiles_are_fed_even_when_the_store_is_down() -> None:
    profiler = RecordingProfiler()
    sink = RecordingSink(fail_times=10**6)
    mon = Monitor(sink, retry_seconds=0.1, flush_interval=0.01, profiler=profiler)
    mon.log("m", "1", [{"x": 1}, {"x": 2}], [1, 2])
    assert mon.flush(10)
    assert mon.stats.failed == 2
    assert sum(c[2] for c in profiler.calls) == 2
    mon.close()


def test_a_failing_profiler_never_stops_the_prediction_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    mon = Monitor(store, flush_interval=0.01, profiler=RecordingProfiler(fail=True))
    mon.log("m", "1", [{"x": 1}] * 3, [1] * 3)
    assert mon.close(10)

    assert store.count_predictions() == 3
    assert mon.stats.profile_errors == 3
    assert "profiling 3 rows of m:1 failed" in caplog.text


# -- the library face: metrics by default, classes learned, latency, ids -----------------


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_a_plain_monitor_has_metrics_and_counts_learned_classes() -> None:
    """The user's report: 1,501 predictions logged, inferwatch_predictions_total stayed 0."""
    mon = Monitor(MemoryStore(), flush_interval=0.05)
    rng = np.random.default_rng(7)
    outputs = rng.choice(["setosa", "versicolor", "virginica"], size=1501).tolist()
    for out in outputs:
        mon.log("iris", "1", [{"x": 1.0}], [out], scores=[0.9])
    assert mon.close(10)

    reg = mon.registry
    for cls in ("setosa", "versicolor", "virginica"):
        got = _value(
            reg, "inferwatch_predictions_total", model="iris", version="1", predicted_class=cls
        )
        assert got == outputs.count(cls)
    assert _value(reg, "inferwatch_prediction_confidence_count", model="iris", version="1") == 1501


def test_latency_and_inference_time_are_observed_once_per_log_call() -> None:
    mon = Monitor(MemoryStore())
    mon.log("m", "1", [{"x": 1}] * 3, ["a"] * 3, latency_seconds=0.02, inference_seconds=0.005)
    mon.log("m", "1", [{"x": 1}], ["b"], latency_seconds=0.04)
    mon.log("m", "1", [{"x": 1}], ["b"])  # no time given: nothing observed
    assert mon.close(10)

    reg, mv = mon.registry, {"model": "m", "version": "1"}
    assert _value(reg, "inferwatch_request_duration_seconds_count", **mv) == 2
    assert _value(reg, "inferwatch_request_duration_seconds_sum", **mv) == pytest.approx(0.06)
    assert _value(reg, "inferwatch_model_inference_duration_seconds_count", **mv) == 1
    assert _value(reg, "inferwatch_model_inference_duration_seconds_sum", **mv) == pytest.approx(
        0.005
    )
    assert _value(reg, "inferwatch_request_instances_sum", **mv) == 5


def test_render_metrics_and_the_asgi_and_wsgi_apps_serve_the_same_registry() -> None:
    from fastapi import FastAPI
    from werkzeug.test import Client

    from tests.server.conftest import TestClient

    registry = CollectorRegistry()
    mon = Monitor(MemoryStore(), registry=registry)
    mon.log("m", "1", [{"x": 1}], ["yes"], latency_seconds=0.01)
    assert mon.registry is registry

    body, content_type = mon.render_metrics()
    assert content_type.startswith("text/plain")
    assert b'inferwatch_predictions_total{model="m",predicted_class="yes",version="1"} 1.0' in body
    body, content_type = mon.render_metrics("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")

    app = FastAPI()
    app.mount("/metrics", mon.metrics_asgi_app())
    with TestClient(app) as client:
        text = client.get("/metrics/").text
    assert 'inferwatch_request_duration_seconds_count{model="m",version="1"} 1.0' in text

    wsgi = Client(mon.metrics_wsgi_app())
    resp = wsgi.get("/")
    assert resp.status_code == 200
    assert b'predicted_class="yes"' in resp.get_data()
    mon.close()


def test_metrics_none_turns_them_off_and_says_so() -> None:
    mon = Monitor(MemoryStore(), metrics=None)
    mon.log("m", "1", [{"x": 1}], ["a"])
    with pytest.raises(RuntimeError, match="no Prometheus metrics"):
        mon.render_metrics()
    with pytest.raises(ValueError, match="registry="):
        Monitor(MemoryStore(), metrics=None, registry=CollectorRegistry())
    assert mon.close()


def test_two_monitors_on_one_registry_is_a_clear_error() -> None:
    registry = CollectorRegistry()
    first = Monitor(MemoryStore(), registry=registry)
    with pytest.raises(ValueError, match="already holds inferwatch's metrics"):
        Monitor(MemoryStore(), registry=registry)
    first.close()


def test_a_registry_that_has_process_metrics_already_is_accepted() -> None:
    """prometheus_client.REGISTRY carries the process collector: passing it must work."""
    from prometheus_client import ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    mon = Monitor(MemoryStore(), registry=registry)
    mon.log("m", "1", [{"x": 1}], ["a"])
    assert b"process_cpu_seconds_total" in mon.render_metrics()[0]
    assert mon.close()


def _ids_in_child(queue: Any, n: int) -> None:
    from inferwatch.monitor import new_prediction_ids

    queue.put(new_prediction_ids(n))


def test_ids_are_uuid_shaped_and_unique_across_processes() -> None:
    import multiprocessing
    import uuid

    from inferwatch.monitor import new_prediction_ids

    ids = new_prediction_ids(10_000)
    assert len(set(ids)) == 10_000
    assert {uuid.UUID(i).version for i in ids} == {4}
    assert {len(i) for i in ids} == {36}  # the predictions.id column is VARCHAR(36)
    every = list(ids)
    # forked children (a pre-forking server's workers) and a fresh interpreter each
    # draw their own prefix
    for method in ("fork", "fork", "spawn"):
        ctx: Any = multiprocessing.get_context(method)
        queue = ctx.Queue()
        child = ctx.Process(target=_ids_in_child, args=(queue, 1000))
        child.start()
        every += queue.get(timeout=60)
        child.join(60)
    assert len(set(every)) == len(every)
    assert len({i[:24] for i in every}) == 4  # one prefix per process


# -- Monitor.from_reference / from_schema: the server's pipeline in your own app ----------


@pytest.fixture(scope="module")
def wine() -> tuple[Any, Any, Any]:
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, y = load_wine(return_X_y=True, as_frame=True)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame, y)
    return frame, y, clf


def _log_rows(mon: Monitor, clf: Any, frame: Any) -> None:
    rows = frame.to_dict("records")
    for lo in range(0, len(rows), 16):
        batch = mon.validate(rows[lo : lo + 16])
        proba = clf.predict_proba(frame.iloc[lo : lo + 16])
        outputs = clf.classes_[proba.argmax(axis=1)].tolist()
        mon.log("wine", "1", batch, outputs, scores=proba.max(axis=1).tolist(),
                latency_seconds=0.002)  # fmt: skip


def test_from_reference_judges_live_drift_like_the_server(
    tmp_path: Path, wine: tuple[Any, Any, Any]
) -> None:
    from inferwatch.store import SQLStore

    frame, _, clf = wine
    ref_path = tmp_path / "wine.parquet"
    frame.to_parquet(ref_path)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    mon = Monitor.from_reference(
        ref_path, model="wine", version="1", store=url, predictor=clf,
        evaluation_interval=None, flush_interval=0.02,
    )  # fmt: skip
    shifted = frame.copy()
    shifted["proline"] = shifted["proline"] * 1.6  # a real variable, shifted
    _log_rows(mon, clf, shifted)

    report = mon.evaluate()

    assert report["window"]["rows"] == len(frame)
    assert report["window"]["judged"] is True
    drifted = {f["name"] for f in report["features"] if f.get("drift_detected")}
    assert drifted == {"proline"}
    reg = mon.registry
    gauge = {"model": "wine", "version": "1", "feature": "proline"}
    assert reg.get_sample_value("inferwatch_drift_detected", gauge) == 1.0
    assert reg.get_sample_value("inferwatch_drift_window_rows", {"model": "wine", "version": "1"})
    classes = {str(c) for c in clf.classes_}
    counted = sum(
        _value(reg, "inferwatch_predictions_total", model="wine", version="1", predicted_class=c)
        for c in classes
    )
    assert counted == len(frame)
    assert mon.close()
    store = SQLStore(url)
    assert store.count_predictions("wine", "1") == len(frame)
    rows = store.latest_evaluations("wine", "1")
    assert {r["feature"] for r in rows if r["metric"] == "drift" and r["status"] == "critical"} == {
        "proline"
    }
    reference = store.get_reference("wine", "1")
    assert reference is not None
    assert reference["n_rows"] == len(frame)
    store.close()


def test_from_reference_on_its_own_data_raises_no_drift(wine: tuple[Any, Any, Any]) -> None:
    frame, _, clf = wine
    mon = Monitor.from_reference(
        frame, model="wine", version="1", store=MemoryStore(), predictor=clf,
        evaluation_interval=None,
    )  # fmt: skip
    _log_rows(mon, clf, frame.sample(frac=1.0, random_state=3))
    report = mon.evaluate()
    assert report["window"]["judged"]
    assert [f["name"] for f in report["features"] if f.get("drift_detected")] == []
    assert not (report.get("prediction_drift") or {}).get("drift_detected")
    mon.close()


def test_the_evaluation_thread_publishes_without_being_asked(wine: tuple[Any, Any, Any]) -> None:
    frame, _, clf = wine
    store = MemoryStore()
    mon = Monitor.from_reference(
        dict(frame.items()), model="wine", version="1", store=store,
        evaluation_interval=0.05, flush_interval=0.01,
    )  # fmt: skip
    _log_rows(mon, clf, frame)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not store.latest_evaluations("wine", "1"):
        time.sleep(0.05)
    assert store.latest_evaluations("wine", "1")
    assert mon.evaluation is not None and mon.evaluation.running
    assert mon.close()
    assert not mon.evaluation.running


def test_validate_refuses_bad_rows_names_the_field_and_counts_them(
    wine: tuple[Any, Any, Any],
) -> None:
    from inferwatch.errors import ValidationError
    from inferwatch.schema import infer_schema

    frame, _, _ = wine
    schema = infer_schema({k: v.to_numpy() for k, v in frame.items()})
    mon = Monitor.from_schema(schema, model="wine", version="1", store=MemoryStore())
    good = frame.iloc[:2].to_dict("records")
    assert mon.validate(good) == good
    bad = [dict(good[0], proline="lots")]
    with pytest.raises(ValidationError) as caught:
        mon.validate(bad)
    body = caught.value.to_dict()["error"]
    assert body["code"] == "wrong_type"
    assert body["details"][0]["field"] == "proline"
    assert _value(mon.registry, "inferwatch_requests_rejected_total", model="wine",
                  reason="wrong_type") == 1  # fmt: skip
    with pytest.raises(RuntimeError, match="needs a reference"):
        mon.evaluate()
    with pytest.raises(RuntimeError, match="needs a schema"):
        Monitor(MemoryStore()).validate(good)
    mon.close()


def test_a_regressor_built_from_a_reference_counts_no_classes() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    frame, y = load_diabetes(return_X_y=True, as_frame=True)
    reg_model = Ridge().fit(frame, y)
    ref = frame.assign(target=y)
    mon = Monitor.from_reference(
        ref, model="dia", version="1", store=MemoryStore(), target="target",
        predictor=reg_model, evaluation_interval=None,
    )  # fmt: skip
    rows = frame.to_dict("records")
    mon.log("dia", "1", rows, reg_model.predict(frame).tolist())
    report = mon.evaluate()
    text = mon.render_metrics()[0].decode()
    assert "predicted_class=" not in text.replace('predicted_class="__other__"', "")
    assert report["prediction_drift"]["name"] == "prediction"
    assert report["prediction_drift"]["drift_detected"] is False
    mon.close()


def test_a_bad_reference_is_a_clear_error(tmp_path: Path) -> None:
    from inferwatch.errors import InputFileError

    with pytest.raises(InputFileError):
        Monitor.from_reference(tmp_path / "nope.csv", model="m", version="1", store=MemoryStore())
    with pytest.raises(ValueError, match="differ in length"):
        Monitor.from_reference({"a": [1, 2], "b": [1]}, model="m", version="1",
                               store=MemoryStore())  # fmt: skip
    with pytest.raises(TypeError, match="reference must be"):
        Monitor.from_reference(42, model="m", version="1", store=MemoryStore())
