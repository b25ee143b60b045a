"""live_target and score_reference: a model's live pipeline built from its reference.

The model's outputs on the reference decide how its predictions are judged: classes for a
classifier, numbers binned on the reference's predictions for a regressor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from inferwatch.evaluate import live_target, output_task, score_reference
from inferwatch.models import ModelPrediction
from inferwatch.observation import PredictionRecord
from inferwatch.schema import Feature, Schema, Target


class Fake:
    """A model adapter whose outputs are a function of ``x``."""

    flavor = "fake"

    def __init__(self, classes: tuple[str, ...] | None = ("no", "yes"), fail: bool = False):
        self.classes = classes
        self.calls: list[int] = []
        self.fail = fail

    def predict(self, instances: Any) -> list[ModelPrediction]:
        if self.fail:
            raise RuntimeError("boom")
        self.calls.append(len(instances))
        if self.classes is None:  # a regressor: a number, no score
            return [ModelPrediction(3.0 * i["x"] + 10.0, None, None) for i in instances]
        return [
            ModelPrediction("yes" if i["x"] > 0 else "no", None, 0.5 + abs(i["x"]) / 10)
            for i in instances
        ]


SCHEMA = Schema((Feature("x", "numeric"),))


def _records(xs: np.ndarray, outputs: list[Any], t: float) -> list[PredictionRecord]:
    ts = datetime.fromtimestamp(t, UTC)
    return [
        PredictionRecord(str(i), "m", "1", ts, {"x": float(x)}, out, None, None)
        for i, (x, out) in enumerate(zip(xs, outputs, strict=True))
    ]


def test_scoring_the_reference_is_bounded_batched_and_survives_a_failing_model() -> None:
    ref = {"x": np.random.default_rng(3).normal(size=2500)}
    fake = Fake()
    sample, values, scores = score_reference(fake, SCHEMA, ref, max_rows=2000, batch_rows=700)
    assert fake.calls == [700, 700, 600] and len(sample["x"]) == len(values) == 2000
    assert all(s is not None for s in scores)
    target = live_target("m", "1", SCHEMA, ref, fake)
    assert (target.profiler.prediction, target.profiler.confidence) == ("prediction", "confidence")
    assert target.profiler.bins.schema_["prediction"].kind == "categorical"
    failed = live_target("m", "1", SCHEMA, ref, Fake(fail=True))
    assert (failed.profiler.prediction, failed.profiler.confidence) == (None, None)


def test_engine_parameters_reach_the_profiler_and_the_evaluator() -> None:
    ref = {"x": np.random.default_rng(4).normal(size=500)}
    t = live_target(
        "m", "2", SCHEMA, ref, window_seconds=30, min_window_rows=7,
        calibration="fixed", calibration_quantile=0.95, calibration_resamples=50,
    )  # fmt: skip
    assert (t.model, t.version, t.profiler.window_seconds) == ("m", "2", 30.0)
    ev = t.evaluator
    assert (ev.min_window_rows, ev.calibration, ev.calibration_quantile) == (7, "fixed", 0.95)
    assert ev.calibration_resamples == 50 and ev.prediction is None


def test_output_task_forced_then_classes_then_schema_then_values() -> None:
    reg = Schema(SCHEMA.features, target=Target("y", "regression"))
    floats = [0.5, 1.5, 2.25]
    assert output_task(floats, SCHEMA, Fake(), task="regression") == "regression"
    assert output_task(floats, reg, Fake()) == "classification"  # the model names classes
    assert output_task(["a"], reg, Fake(classes=None)) == "regression"  # the schema says so
    assert output_task(floats, SCHEMA, Fake(classes=None)) == "regression"
    assert output_task(list(range(300)), SCHEMA, Fake(classes=None)) == "regression"
    assert output_task([0, 1, 1, 0], SCHEMA, Fake(classes=None)) == "classification"
    assert output_task([None], SCHEMA, Fake(classes=None)) is None


def test_a_regressor_prediction_is_numeric_and_shifts_are_caught() -> None:
    rng = np.random.default_rng(5)
    ref = {"x": rng.normal(size=3000)}
    t = live_target("m", "1", SCHEMA, ref, Fake(classes=None), window_seconds=60)
    assert t.profiler.prediction == "prediction" and t.profiler.confidence is None
    assert t.profiler.bins.schema_["prediction"].kind == "numeric"
    now = t.profiler.clock()

    def judged(xs: np.ndarray) -> Any:
        t.profiler.add("m", "1", _records(xs, [3.0 * x + 10.0 for x in xs], now))
        _, window = t.profiler.current("m", "1")
        report = t.evaluator.evaluate(window)
        t.profiler._windows.clear()  # the next call judges a fresh window
        return report.prediction_drift

    same = judged(rng.normal(size=1000))
    assert same is not None and same.kind == "numeric" and same.name == "prediction"
    assert same.result is not None and same.result.test in ("wasserstein", "ks")
    assert not same.drift_detected
    shifted = judged(rng.normal(loc=0.5, size=1000))
    assert shifted is not None and shifted.result is not None
    assert shifted.drift_detected and shifted.result.statistic > shifted.result.threshold
