"""Live evaluation: binned verdicts close to the exact ones, calibrated thresholds that hold at
any window size, unjudged small windows, evaluation rows, and the evaluation loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from inferwatch.evaluate import (
    CategoricalColumn,
    ColumnInput,
    DriftOptions,
    EvaluationLoop,
    LiveEvaluator,
    LiveTarget,
    NumericColumn,
    evaluate_batch,
    evaluation_rows,
)
from inferwatch.metrics import LiveDriftCollector
from inferwatch.observation import PredictionRecord
from inferwatch.profile import FrameProfile, ReferenceBins, profile
from inferwatch.schema import Feature, Schema
from inferwatch.stats import counts_from_values, ks_binned
from inferwatch.store import MemoryStore
from inferwatch.windows import WindowProfiler

SCHEMA = Schema(
    (
        Feature("x", "numeric"),
        Feature("y", "numeric"),
        Feature("plan", "categorical"),
        Feature("flag", "boolean"),
    )
)
PLANS = np.array(["basic", "plus", "pro"], dtype=object)
Cols = dict[str, np.ndarray[Any, Any]]


def frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> Cols:
    """Two numbers (one with 5% missing), a category and a flag; ``shift`` moves them all."""
    y = rng.lognormal(shift, 0.5, n)
    y[rng.random(n) < 0.05] = np.nan
    p = np.array([0.5, 0.3, 0.2]) * (1 - shift) + np.array([0.2, 0.3, 0.5]) * shift
    return {
        "x": rng.normal(shift, 1.0, n),
        "y": y,
        "plan": PLANS[rng.choice(3, n, p=p)],
        "flag": rng.random(n) < 0.3 + 0.3 * shift,
    }


@pytest.fixture
def fitted(rng: np.random.Generator) -> tuple[Cols, ReferenceBins, FrameProfile]:
    ref = frame(rng, 5000)
    bins = ReferenceBins().fit(ref, SCHEMA)
    return ref, bins, profile(ref, bins)


def batch_inputs(cols: Cols) -> dict[str, ColumnInput]:
    return {
        k: NumericColumn(v) if v.dtype.kind == "f" else CategoricalColumn(counts_from_values(v))
        for k, v in cols.items()
    }


def results(report: Any) -> dict[str, Any]:
    return {f.name: f.result for f in report.features}


# -- binned against exact ----------------------------------------------------------------


@pytest.mark.parametrize(
    "tests",
    [
        {"x": "ks", "y": "ks", "plan": "chi_square", "flag": "z_test"},
        {"x": "wasserstein", "y": "wasserstein", "plan": "jensen_shannon", "flag": "psi"},
        {"x": "jensen_shannon", "y": "psi", "plan": "psi", "flag": "hellinger"},
    ],
)
def test_binned_results_are_within_their_bounds_of_the_exact_batch_results(
    fitted: tuple[Cols, ReferenceBins, FrameProfile],
    rng: np.random.Generator,
    tests: dict[str, str],
) -> None:
    ref, bins, ref_profile = fitted
    cur = frame(rng, 4000, shift=0.15)
    options = DriftOptions(tests=tests)
    live = LiveEvaluator(ref_profile, SCHEMA, options=options, calibration="fixed")
    window = profile(cur, bins)

    got = results(live.evaluate(window))
    exact = results(
        evaluate_batch(
            SCHEMA, batch_inputs(ref), batch_inputs(cur), n_reference=5000, n_current=4000,
            options=options,
        )
    )  # fmt: skip

    for name in ("plan", "flag"):  # category counts are lossless: the same numbers
        assert got[name].statistic == pytest.approx(exact[name].statistic, rel=1e-9, abs=1e-12)
        assert got[name].drift_detected == exact[name].drift_detected
    for name in ("x", "y"):
        b, e = got[name], exact[name]
        assert b.mode == "binned"
        assert e.mode == "exact"
        if b.test == "ks":  # documented: D_b <= D <= D_b + the largest bin share
            assert b.statistic <= e.statistic + 1e-12
            assert e.statistic <= b.statistic + b.details["max_bin_share"] + 1e-12
        elif b.test == "wasserstein":  # |W_b - W| <= sum (p + q) w / 2 + out-of-range tails
            assert abs(b.details["distance"] - e.details["distance"]) <= _w1_bound(
                window.numeric(name).histogram, ref_profile.numeric(name).histogram, cur[name]
            )
        else:  # 10 coarse bins: the same reference quantiles, interpolated vs inverted CDF
            assert b.statistic == pytest.approx(e.statistic, abs=0.01)


def _w1_bound(cur: Any, ref: Any, values: np.ndarray[Any, Any]) -> float:
    edges = ref.edges
    p = ref.counts[1:-1] / ref.counts.sum()
    q = cur.counts[1:-1] / cur.counts.sum()
    finite = values[np.isfinite(values)]
    tails = np.clip(edges[0] - finite, 0, None) + np.clip(finite - edges[-1], 0, None)
    return float(np.dot(p + q, np.diff(edges)) / 2 + tails.mean())


# -- verdicts ----------------------------------------------------------------------------


def test_a_shifted_window_is_flagged_and_a_same_distribution_window_is_not(
    fitted: tuple[Cols, ReferenceBins, FrameProfile], rng: np.random.Generator
) -> None:
    _, bins, ref_profile = fitted
    live = LiveEvaluator(ref_profile, SCHEMA)  # calibrated: the live default

    same = live.evaluate(profile(frame(rng, 3000), bins))
    shifted = live.evaluate(profile(frame(rng, 3000, shift=0.5), bins))

    assert len(same.drifted) <= 1  # each feature false-alarms in 1% of windows
    assert not same.dataset_drift
    assert set(shifted.drifted) == {"x", "y", "plan", "flag"}
    assert shifted.dataset_drift
    for col in shifted.features:
        r = col.result
        assert r is not None
        assert r.mode == ("binned" if col.kind == "numeric" else "exact")
        assert r.details["calibrated_threshold"] == r.threshold
        assert r.details["nominal_threshold"] in (0.05, 0.1)
        assert r.effect_size is not None
        assert r.details["p_value_calibrated"] == pytest.approx(1 / 201)


def test_fixed_distance_thresholds_false_alarm_in_small_windows_where_calibrated_do_not(
    fitted: tuple[Cols, ReferenceBins, FrameProfile], rng: np.random.Generator
) -> None:
    # 5,000 reference rows: the default rule picks distances with fixed thresholds
    # (Wasserstein >= 0.1, Jensen-Shannon >= 0.1), which sampling noise passes in small windows
    _, bins, ref_profile = fitted
    fixed = LiveEvaluator(ref_profile, SCHEMA, calibration="fixed", min_window_rows=50)
    calibrated = LiveEvaluator(ref_profile, SCHEMA, min_window_rows=50)
    alarms = {"fixed": 0, "calibrated": 0}
    windows = 40
    for _ in range(windows):
        window = profile(frame(rng, 120), bins)  # the reference's distribution
        alarms["fixed"] += len(fixed.evaluate(window).drifted)
        alarms["calibrated"] += len(calibrated.evaluate(window).drifted)
    verdicts = windows * len(SCHEMA.features)

    assert alarms["fixed"] / verdicts > 0.2  # about 30% of the verdicts here
    assert alarms["calibrated"] / verdicts <= 0.02  # the 0.99 quantile: about 1%


def test_at_a_large_window_the_calibration_includes_the_references_own_noise(
    rng: np.random.Generator,
) -> None:
    # A 1,000-row reference and a 200,000-row window from the same distribution.  The
    # window is far more precise than the reference, so what separates them is the
    # reference's noise.  A threshold from draws compared with the fixed reference (a
    # one-sample null) ignores it and flags every feature; the two-sample null does not.
    schema = Schema(tuple(Feature(f"f{i}", "numeric") for i in range(4)))

    def data(n: int) -> Cols:
        return {f.name: rng.normal(0.0, 1.0, n) for f in schema}

    ref = data(1000)
    bins = ReferenceBins().fit(ref, schema)
    ref_profile = profile(ref, bins)
    live = LiveEvaluator(ref_profile, schema)  # default rule at 1,000 rows: KS
    window = profile(data(200_000), bins)

    report = live.evaluate(window)

    assert len(report.drifted) <= 1  # each feature false-alarms in 1% of windows
    for col in report.features:
        r = col.result
        assert r is not None
        assert r.test == "ks"
        # near the two-sample KS critical value at the 1% level, 1.63 sqrt((n + m) / nm)
        n_bucket = 131_072  # 200,000 rounded down to a power of two
        critical = 1.63 * np.sqrt((1000 + n_bucket) / (1000 * n_bucket))
        assert r.threshold == pytest.approx(critical, rel=0.25)
        ref_hist = ref_profile.numeric(col.name).histogram
        shares = ref_hist.full() / ref_hist.total
        one_sample = [
            ks_binned(ref_hist, _binned(ref_hist.edges, rng.multinomial(200_000, shares))).statistic
            for _ in range(50)
        ]
        assert np.quantile(one_sample, 0.99) < r.statistic  # the naive null flags every one


def _binned(edges: np.ndarray[Any, Any], full: np.ndarray[Any, Any]) -> Any:
    from inferwatch._binned import Binned

    return Binned(edges, full[1:].astype(np.int64), int(full[0]))


def test_a_window_under_min_window_rows_is_not_judged(
    fitted: tuple[Cols, ReferenceBins, FrameProfile], rng: np.random.Generator
) -> None:
    _, bins, ref_profile = fitted
    live = LiveEvaluator(ref_profile, SCHEMA, min_window_rows=100)

    report = live.evaluate(profile(frame(rng, 99, shift=1.0), bins))

    assert report.evaluated == ()
    assert report.n_current == 99
    assert all("min_window_rows" in (f.error or "") for f in report.features)
    collector = LiveDriftCollector()
    collector.publish("m", "1", report.to_dict())
    registry = CollectorRegistry()
    registry.register(collector)
    assert registry.get_sample_value("inferwatch_drift_detected", _labels("x")) is None
    assert registry.get_sample_value("inferwatch_dataset_drift_share", _labels()) is None
    assert evaluation_rows(report, **_window()) == []

    judged = live.evaluate(profile(frame(rng, 100, shift=1.0), bins))
    collector.publish("m", "1", judged.to_dict())
    assert registry.get_sample_value("inferwatch_drift_detected", _labels("x")) == 1.0


def _labels(feature: str | None = None) -> dict[str, str]:
    out = {"model": "m", "version": "1"}
    return out if feature is None else {**out, "feature": feature}


def _window() -> dict[str, Any]:
    from datetime import UTC, datetime

    t = datetime(2024, 5, 1, tzinfo=UTC)
    return {"model": "m", "version": "1", "window_start": t, "window_end": t, "evaluated_at": t}


def test_calibrations_are_cached_per_power_of_two_and_reproducible(
    fitted: tuple[Cols, ReferenceBins, FrameProfile],
) -> None:
    _, _, ref_profile = fitted
    live = LiveEvaluator(ref_profile, SCHEMA, seed=3)
    again = LiveEvaluator(ref_profile, SCHEMA, seed=3)

    assert live.calibrate("x", 1000) is live.calibrate("x", 600)  # both in the 512 bucket
    assert live.calibrate("x", 1024).n_current == 1024
    assert live.calibrate("x", 1024).threshold < live.calibrate("x", 512).threshold
    assert again.calibrate("x", 700).threshold == live.calibrate("x", 700).threshold
    other = LiveEvaluator(ref_profile, SCHEMA, seed=4).calibrate("x", 700)
    assert other.threshold != live.calibrate("x", 700).threshold


def test_an_explicit_threshold_wins_over_calibration(
    fitted: tuple[Cols, ReferenceBins, FrameProfile], rng: np.random.Generator
) -> None:
    _, bins, ref_profile = fitted
    live = LiveEvaluator(ref_profile, SCHEMA, options=DriftOptions(thresholds={"x": 5.0}))

    got = results(live.evaluate(profile(frame(rng, 2000, shift=0.5), bins)))

    assert got["x"].threshold == 5.0
    assert not got["x"].drift_detected
    assert "calibrated_threshold" not in got["x"].details
    assert "calibrated_threshold" in got["y"].details


def test_quality_read_from_profiles_matches_the_raw_rows(
    fitted: tuple[Cols, ReferenceBins, FrameProfile], rng: np.random.Generator
) -> None:
    ref, bins, ref_profile = fitted
    cur = frame(rng, 2000)
    cur["x"][:150] = 50.0  # out of the reference's range (7.5%), and outliers
    cur["plan"][:300] = "gold"  # unseen
    cur["plan"][300:310] = None
    live = LiveEvaluator(ref_profile, SCHEMA)

    q = {f.name: f.quality for f in live.evaluate(profile(cur, bins)).features}

    x, y, plan = q["x"], q["y"], q["plan"]
    assert x is not None
    assert y is not None
    assert plan is not None
    assert x.out_of_range == 150 + int(
        np.sum((cur["x"][150:] < ref["x"].min()) | (cur["x"][150:] > ref["x"].max()))
    )
    assert "out_of_range" in x.problems
    q1, q3 = np.quantile(ref["x"], [0.25, 0.75])
    fence = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
    exact_outliers = int(np.sum((cur["x"] < fence[0]) | (cur["x"] > fence[1])))
    assert abs(x.outliers - exact_outliers) <= 3  # fences located inside a bin
    assert y.missing == int(np.isnan(cur["y"]).sum())
    assert y.reference_missing_share == pytest.approx(np.isnan(ref["y"]).mean())
    assert plan.unseen_categories == {"gold": 300}
    assert plan.unseen_share == pytest.approx(0.15)
    assert plan.missing == 10
    assert "unseen_categories" in plan.problems
    assert x.summary["median"] == pytest.approx(np.median(cur["x"]), abs=0.02)


def test_evaluation_rows_map_verdicts_to_statuses(
    fitted: tuple[Cols, ReferenceBins, FrameProfile], rng: np.random.Generator
) -> None:
    _, bins, ref_profile = fitted
    report = LiveEvaluator(ref_profile, SCHEMA).evaluate(profile(frame(rng, 2000, shift=0.5), bins))

    rows = evaluation_rows(report, **_window())

    by = {(r.metric, r.feature): r for r in rows}
    assert {m for m, _ in by} == {
        "drift", "missing_share", "out_of_range_share", "unseen_share", "dataset_drift_share",
    }  # fmt: skip
    assert by["drift", "x"].status == "critical"
    assert by["drift", "x"].test == "wasserstein"
    assert by["drift", "x"].threshold == results(report)["x"].threshold
    assert by["missing_share", "y"].status == "ok"
    assert by["dataset_drift_share", None].value == 1.0
    assert by["dataset_drift_share", None].status == "critical"
    assert len(rows) == 4 * 3 + 1


# -- the loop ----------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _records(rows: Cols, t: float) -> list[PredictionRecord]:
    from datetime import UTC, datetime

    ts = datetime.fromtimestamp(t, UTC)
    n = len(next(iter(rows.values())))
    return [
        PredictionRecord(
            str(i), "m", "1", ts, {k: _plain(v[i]) for k, v in rows.items()}, None, None, None
        )
        for i in range(n)
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def test_the_loop_stores_rows_publishes_reports_and_keeps_a_closed_window_on_show(
    fitted: tuple[Cols, ReferenceBins, FrameProfile], rng: np.random.Generator
) -> None:
    _, bins, ref_profile = fitted
    clock = Clock(1000.0)
    profiler = WindowProfiler(bins, SCHEMA, window_seconds=100, clock=clock)
    live = LiveEvaluator(ref_profile, SCHEMA, min_window_rows=200)
    store = MemoryStore()
    shown: dict[tuple[str, str], Mapping[str, Any]] = {}
    loop = EvaluationLoop(
        [LiveTarget("m", "1", profiler, live)],
        interval=60,
        sink=store,
        publish=lambda m, v, report: shown.__setitem__((m, v), report),
        clock=clock,
    )

    loop.run_once()  # no traffic yet: nothing judged, nothing stored
    assert shown["m", "1"]["window"] == {
        "start": 1000.0, "end": 1100.0, "rows": 0, "judged": False, "evaluated_at": 1000.0,
    }  # fmt: skip
    assert store.latest_evaluations("m", "1") == []

    profiler.add("m", "1", _records(frame(rng, 300, shift=0.5), 1010.0))
    loop.run_once()
    assert shown["m", "1"]["window"]["judged"]
    assert "x" in shown["m", "1"]["drifted_features"]
    first = store.latest_evaluations("m", "1")
    assert {r["metric"] for r in first} >= {"drift", "dataset_drift_share"}

    profiler.add("m", "1", _records(frame(rng, 100, shift=0.5), 1090.0))
    clock.now = 1105.0  # the window closed; the new one has 10 rows
    profiler.add("m", "1", _records(frame(rng, 10), 1101.0))
    loop.run_once()
    shown_now = shown["m", "1"]
    assert shown_now["window"]["start"] == 1000.0  # the closed window, judged in full
    assert shown_now["window"]["rows"] == 400
    final = store.latest_evaluations("m", "1")
    assert final[0]["window_start"].timestamp() == 1000.0
    dataset = next(r for r in final if r["metric"] == "dataset_drift_share")
    assert dataset["details"]["n_current"] == 400

    clock.now = 1305.0  # two windows on without traffic: no stale verdict is shown
    loop.run_once()
    assert not shown["m", "1"]["window"]["judged"]
    assert loop.evaluations == 6
    assert loop.failures == 0


def test_the_loop_thread_starts_and_stops_within_bounds(
    fitted: tuple[Cols, ReferenceBins, FrameProfile],
) -> None:
    _, bins, ref_profile = fitted
    profiler = WindowProfiler(bins, SCHEMA, window_seconds=100)
    seen: list[str] = []
    loop = EvaluationLoop(
        [LiveTarget("m", "1", profiler, LiveEvaluator(ref_profile, SCHEMA))],
        interval=0.01,
        publish=lambda m, v, report: seen.append(m),
    )

    loop.start()
    for _ in range(500):
        if len(seen) >= 3:
            break
        import time

        time.sleep(0.01)
    assert loop.running
    assert loop.stop(5)
    assert not loop.running
    assert len(seen) >= 3


# -- prediction drift --------------------------------------------------------------------

OUT_SCHEMA = Schema(
    (Feature("x", "numeric"), Feature("churned", "categorical"), Feature("confidence", "numeric"))
)
INPUTS = Schema((Feature("x", "numeric"),))


def outputs(rng: np.random.Generator, n: int, p_yes: float, conf: float) -> Cols:
    """An unchanged input, a predicted class (``p_yes`` of "yes") and beta scores."""
    return {
        "x": rng.normal(0.0, 1.0, n),
        "churned": np.where(rng.random(n) < p_yes, "yes", "no").astype(object),
        "confidence": 0.5 + 0.5 * rng.beta(conf, 2.0, n),
    }


@pytest.mark.parametrize(
    ("p_yes", "conf", "class_drift", "confidence_drift"),
    [(0.2, 4.0, False, False), (0.45, 4.0, True, False), (0.2, 1.5, False, True)],
)
def test_prediction_drift_judges_the_predicted_class_and_confidence(
    rng: np.random.Generator, p_yes: float, conf: float, class_drift: bool, confidence_drift: bool
) -> None:
    ref = outputs(rng, 3000, 0.2, 4.0)
    bins = ReferenceBins().fit(ref, OUT_SCHEMA)
    live = LiveEvaluator(profile(ref, bins), INPUTS, prediction="churned", confidence="confidence")
    window = profile(outputs(rng, 2000, p_yes, conf), bins)
    report = live.evaluate(window)
    assert [f.name for f in report.features] == ["x"]  # features stay the inputs
    assert report.drift_share == 0.0
    pred = report.prediction_drift
    assert pred is not None and pred.result is not None
    assert (pred.name, pred.role, pred.kind) == ("churned", "prediction", "categorical")
    assert pred.drift_detected is class_drift
    confidence = pred.result.details["confidence"]
    assert confidence["drift_detected"] is confidence_drift
    assert confidence["details"]["calibrated_threshold"] == confidence["threshold"]

    collector = LiveDriftCollector()
    collector.publish("m", "1", report.to_dict())
    registry = CollectorRegistry()
    registry.register(collector)
    labels = {"model": "m", "version": "1"}
    for feature, flagged in (("churned", class_drift), ("confidence", confidence_drift)):
        got = registry.get_sample_value("inferwatch_drift_detected", {**labels, "feature": feature})
        assert got == float(flagged)


def test_prediction_drift_of_a_small_window_and_of_scores_alone(rng: np.random.Generator) -> None:
    ref = outputs(rng, 1000, 0.2, 4.0)
    bins = ReferenceBins().fit(ref, OUT_SCHEMA)
    live = LiveEvaluator(profile(ref, bins), INPUTS, prediction="churned", confidence="confidence")
    small = live.evaluate(profile(outputs(rng, 10, 0.2, 4.0), bins)).prediction_drift
    assert small is not None and small.result is None and "at least 100" in (small.error or "")
    scores_only = LiveEvaluator(profile(ref, bins), INPUTS, confidence="confidence")
    pred = scores_only.evaluate(profile(outputs(rng, 500, 0.2, 1.5), bins)).prediction_drift
    assert pred is not None and (pred.name, pred.role) == ("confidence", "prediction")
    assert pred.drift_detected
    assert (
        LiveEvaluator(profile(ref, bins), INPUTS)
        .evaluate(profile(outputs(rng, 500, 0.2, 4.0), bins))
        .prediction_drift
        is None
    )
