"""Live windows: rows split by window, the merge law against ``profile()``, bounded memory."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from inferwatch.observation import PredictionRecord
from inferwatch.profile import ReferenceBins, profile
from inferwatch.schema import Schema, infer_schema
from inferwatch.windows import WindowProfiler, WindowRouter, window_start

W = 60.0  # window seconds


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reference(rng: np.random.Generator) -> tuple[Schema, ReferenceBins]:
    n = 2000
    cols = {
        "age": rng.integers(18, 80, n),
        "income": rng.lognormal(10, 0.5, n),
        "plan": rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n),
        "autopay": rng.random(n) < 0.6,
    }
    schema = infer_schema(cols)
    return schema, ReferenceBins(n_bins=100).fit(cols, schema)


def inputs(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """JSON-like rows as requests bring them: some missing, one unseen category, a None."""
    out = []
    for i in range(n):
        row: dict[str, Any] = {
            "age": int(rng.integers(10, 90)),
            "income": float(rng.lognormal(10.2, 0.5)),
            "plan": str(rng.choice(["basic", "plus", "pro", "gold"])),
            "autopay": bool(rng.random() < 0.5),
        }
        if i % 7 == 0:
            row["income"] = None
        if i % 11 == 0:
            del row["plan"]
        out.append(row)
    return out


def records(rows: list[dict[str, Any]], times: list[float]) -> list[PredictionRecord]:
    return [
        PredictionRecord(str(i), "m", "1", datetime.fromtimestamp(t, UTC), r, None, None, None)
        for i, (r, t) in enumerate(zip(rows, times, strict=True))
    ]


def columns_of(rows: list[dict[str, Any]], schema: Schema) -> dict[str, np.ndarray[Any, Any]]:
    """What a batch reader would give for the same rows (None = missing)."""
    out: dict[str, np.ndarray[Any, Any]] = {}
    for feat in schema:
        values = [r.get(feat.name) for r in rows]
        if feat.kind == "numeric":
            out[feat.name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            out[feat.name] = np.array(values, dtype=object)
    return out


def test_window_start_floors_on_the_epoch() -> None:
    assert window_start(125.0, 60) == 120.0
    assert window_start(120.0, 60) == 120.0
    assert window_start(119.999, 60) == 60.0
    assert window_start(1_700_000_123.5, 3600) == 1_699_999_200.0


def test_records_land_in_the_window_of_their_timestamp(
    reference: tuple[Schema, ReferenceBins], rng: np.random.Generator
) -> None:
    schema, bins = reference
    windows = WindowProfiler(bins, schema, window_seconds=W, clock=Clock(10 * W + 1))
    times = [9 * W + 5] * 30 + [10 * W] * 20 + [9 * W + 59.9] * 10  # two windows, interleaved
    rows = inputs(rng, 60)

    windows.add("m", "1", records(rows, times))

    assert windows.starts("m", "1") == [9 * W, 10 * W]
    previous = windows.window("m", "1", 9 * W)
    assert previous is not None
    assert previous.n_rows == 40
    start, current = windows.current("m", "1")
    assert (start, current.n_rows) == (10 * W, 20)
    assert windows.window("m", "1", 8 * W) is None
    assert windows.current("other", "1")[1].n_rows == 0


def test_a_window_profile_equals_profile_of_the_same_rows(
    reference: tuple[Schema, ReferenceBins], rng: np.random.Generator
) -> None:
    schema, bins = reference
    windows = WindowProfiler(bins, schema, window_seconds=W, clock=Clock(5 * W))
    rows = inputs(rng, 1500)
    batches = [rows[:500], rows[500:501], rows[501:1200], rows[1200:]]
    for batch in batches:  # the writer thread's batches
        windows.add("m", "1", records(batch, [5 * W + 1.0] * len(batch)))

    _, got = windows.current("m", "1")
    expected = profile(columns_of(rows, schema), bins)

    assert got.isclose(expected)  # counts and histograms exact, moments to rounding
    assert got.numeric("income").histogram == expected.numeric("income").histogram
    assert got.categorical("plan").unseen == {"gold": expected.categorical("plan").unseen["gold"]}
    assert got.categorical("plan").missing == sum(1 for r in rows if "plan" not in r)
    assert got.numeric("income").missing == sum(1 for r in rows if r["income"] is None)
    one_batch = WindowProfiler(bins, schema, window_seconds=W, clock=Clock(5 * W))
    one_batch.add("m", "1", records(rows, [5 * W + 1.0] * len(rows)))
    assert one_batch.current("m", "1")[1] == expected  # one batch: bit for bit


def test_a_value_of_the_wrong_type_is_counted_not_raised(
    reference: tuple[Schema, ReferenceBins],
) -> None:
    schema, bins = reference
    windows = WindowProfiler(bins, schema, window_seconds=W, clock=Clock(0.0))
    rows: list[dict[str, Any]] = [
        {"age": "forty", "income": 1.0, "plan": 3, "autopay": "yes"},
        {"age": 40},
    ]

    windows.add("m", "1", records(rows, [1.0, 2.0]))

    _, prof = windows.current("m", "1")
    assert prof.numeric("age").invalid == 1
    assert prof.categorical("plan").invalid == 1
    assert prof.categorical("autopay").invalid == 1
    assert prof.n_rows == 2


def test_retention_keeps_the_last_windows_and_counts_what_it_drops(
    reference: tuple[Schema, ReferenceBins], rng: np.random.Generator
) -> None:
    schema, bins = reference
    clock = Clock(0.0)
    windows = WindowProfiler(bins, schema, window_seconds=W, clock=clock, retention=3)
    for k in range(10):  # ten windows of traffic, the clock moving with it
        clock.now = k * W + 30
        windows.add("m", "1", records(inputs(rng, 5), [k * W + 1] * 5))
        assert len(windows.starts("m", "1")) <= 3

    assert windows.starts("m", "1") == [7 * W, 8 * W, 9 * W]
    late = records(inputs(rng, 4), [6 * W + 1] * 4)  # older than every kept window
    ahead = records(inputs(rng, 3), [11 * W + 1] * 3)  # two windows ahead of the clock
    windows.add("m", "1", late + ahead)

    assert windows.dropped == 7
    assert windows.starts("m", "1") == [7 * W, 8 * W, 9 * W]


def test_readers_get_copies_while_the_writer_adds(
    reference: tuple[Schema, ReferenceBins], rng: np.random.Generator
) -> None:
    schema, bins = reference
    windows = WindowProfiler(bins, schema, window_seconds=W, clock=Clock(30.0))
    batch = records(inputs(rng, 200), [1.0] * 200)
    seen: list[int] = []

    def write() -> None:
        for _ in range(25):
            windows.add("m", "1", batch)

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive():
        _, copy = windows.current("m", "1")
        seen.append(copy.n_rows)
        copy.update(columns_of([{"age": 1}], schema))  # a copy: the window is not changed
    writer.join(10)

    assert all(n % 200 == 0 for n in seen)
    assert seen == sorted(seen)
    assert windows.current("m", "1")[1].n_rows == 25 * 200


def test_the_router_sends_each_model_version_to_its_own_profiler(
    reference: tuple[Schema, ReferenceBins], rng: np.random.Generator
) -> None:
    schema, bins = reference
    a = WindowProfiler(bins, schema, window_seconds=W, clock=Clock(30.0))
    b = WindowProfiler(bins, schema, window_seconds=W, clock=Clock(30.0))
    router = WindowRouter({("a", "1"): a, ("b", "1"): b})

    router.add("a", "1", records(inputs(rng, 3), [1.0] * 3))
    router.add("b", "1", records(inputs(rng, 2), [1.0] * 2))
    router.add("c", "1", records(inputs(rng, 9), [1.0] * 9))  # no reference: ignored

    assert a.current("a", "1")[1].n_rows == 3
    assert b.current("b", "1")[1].n_rows == 2
    assert router["a", "1"] is a


def test_bad_parameters_are_refused(reference: tuple[Schema, ReferenceBins]) -> None:
    schema, bins = reference
    with pytest.raises(ValueError, match="window_seconds"):
        WindowProfiler(bins, schema, window_seconds=0)
    with pytest.raises(ValueError, match="retention"):
        WindowProfiler(bins, schema, retention=0)


def test_model_outputs_are_profiled_under_their_column_names(
    reference: tuple[Schema, ReferenceBins],
) -> None:
    from inferwatch.windows import output_features

    schema, _ = reference
    outs = output_features(schema, prediction="churned", confidence="confidence")
    assert [(f.name, f.kind) for f in outs] == [
        ("churned", "categorical"),
        ("confidence", "numeric"),
    ]
    assert output_features(schema, prediction="plan", confidence=None) == ()  # no shadowing
    ref = {
        "age": np.array([20.0, 30.0, 40.0, 50.0]),
        "churned": np.array(["no", "yes", "no", "no"], dtype=object),
        "confidence": np.array([0.6, 0.7, 0.8, 0.9]),
    }
    sub = Schema((schema["age"], *outs))
    bins = ReferenceBins(n_bins=10).fit(ref, sub)
    windows = WindowProfiler(
        bins, Schema((schema["age"],)), window_seconds=W, clock=Clock(130.0),
        prediction="churned", confidence="confidence",
    )  # fmt: skip
    ts = datetime.fromtimestamp(125, UTC)
    recs = [
        PredictionRecord("1", "m", "1", ts, {"age": 25}, "yes", 0.75, None),
        PredictionRecord("2", "m", "1", ts, {"age": 35}, 1, None, None),  # no score: missing
        PredictionRecord("3", "m", "1", ts, {"age": 45}, "no", 0.95, None),
    ]
    windows.add("m", "1", recs)
    _, prof = windows.current("m", "1")
    pred = prof.categorical("churned")
    assert (pred.frequencies["yes"], pred.frequencies["no"], dict(pred.unseen)) == (1, 1, {"1": 1})
    conf = prof.numeric("confidence")
    assert (conf.n_finite, conf.missing) == (2, 1)
    # without the names, or with names the bins lack, outputs are not profiled
    plain = WindowProfiler(bins, Schema((schema["age"],)), window_seconds=W, clock=Clock(130.0))
    assert plain.prediction is None and plain.confidence is None
