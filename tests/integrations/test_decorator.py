"""``monitored``: a predict function or an estimator, validated, timed, logged and counted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from inferwatch import Monitor, ValidationError
from inferwatch.errors import ModelError
from inferwatch.integrations import Monitored, monitored
from inferwatch.store import MemoryStore
from tests.integrations.conftest import Data, samples, stored, value

MV = {"model": "tumour", "version": "1"}


def scrape(monitor: Monitor) -> str:
    return monitor.render_metrics()[0].decode()


def test_a_function_of_rows_is_validated_logged_and_counted(
    data: Data, monitor: Monitor, db_url: str
) -> None:
    seen: list[Any] = []

    @monitored(monitor)
    def predict(rows: list[dict[str, Any]]) -> Any:
        seen.append(rows)
        return data.model.predict(pd.DataFrame(rows))

    expected = data.model.predict(data.X.iloc[::20])
    out, ids = predict.with_ids(data.rows)
    np.testing.assert_array_equal(out, expected)  # what the function returned, as it did
    assert isinstance(seen[0], list) and seen[0][0] == data.rows[0]
    assert predict.__name__ == "predict"  # type: ignore[attr-defined]
    assert monitor.flush()
    rows = stored(db_url)
    assert set(rows) == set(ids) and len(ids) == len(data.rows)
    for pid, row, want in zip(ids, data.rows, expected, strict=True):
        assert rows[pid].output == want
        assert rows[pid].inputs == row
        latency = rows[pid].latency_seconds
        assert latency is not None and latency > 0
    text = scrape(monitor)
    assert value(text, "inferwatch_requests_total", **MV, status="200") == 1
    counted = sum(
        value(text, "inferwatch_predictions_total", **MV, predicted_class=c) for c in ("0", "1")
    )
    assert counted == len(data.rows)
    assert value(text, "inferwatch_model_inference_duration_seconds_count", **MV) == 1
    assert value(text, "inferwatch_request_duration_seconds_count", **MV) == 1
    assert value(text, "inferwatch_inflight_requests", model="tumour") == 0


def test_a_dataframe_reaches_the_function_as_a_dataframe(data: Data, monitor: Monitor) -> None:
    frames: list[pd.DataFrame] = []

    @monitored(monitor)
    def predict(frame: pd.DataFrame) -> Any:
        frames.append(frame)
        return pd.Series(data.model.predict(frame), index=frame.index)

    batch = data.X.iloc[10:15][list(reversed(data.X.columns))]  # columns out of order
    out = predict(batch)
    assert isinstance(out, pd.Series)
    np.testing.assert_array_equal(out.to_numpy(), data.model.predict(data.X.iloc[10:15]))
    assert list(frames[0].columns) == list(data.X.columns)  # the schema's order
    assert list(frames[0].index) == list(batch.index)


def test_one_dict_gives_one_output(data: Data, monitor: Monitor) -> None:
    predict = monitored(monitor, lambda rows: data.model.predict(pd.DataFrame(rows)))
    assert predict(data.rows[3]) == data.model.predict(data.X.iloc[[60]])[0]


def test_an_estimator_is_run_as_the_server_runs_it(
    data: Data, monitor: Monitor, db_url: str
) -> None:
    predict = monitored(monitor, data.model)
    out, ids = predict.with_ids(data.X.iloc[::20])
    assert out == data.model.predict(data.X.iloc[::20]).tolist()
    assert monitor.flush()
    rows = stored(db_url)
    proba = data.model.predict_proba(data.X.iloc[::20])
    for pid, p in zip(ids, proba, strict=True):
        assert rows[pid].probabilities == pytest.approx({"0": p[0], "1": p[1]})
        assert rows[pid].score == pytest.approx(p.max())


def test_probabilities_with_classes(data: Data, monitor: Monitor, db_url: str) -> None:
    @monitored(monitor, classes=data.model.classes_)
    def proba(frame: pd.DataFrame) -> Any:
        return data.model.predict_proba(frame)

    batch = data.X.iloc[:8]
    out, ids = proba.with_ids(batch)
    np.testing.assert_allclose(out, data.model.predict_proba(batch))  # the caller's, as is
    assert monitor.flush()
    rows = stored(db_url)
    for pid, p in zip(ids, out, strict=True):
        assert rows[pid].output == int(p.argmax())
        assert rows[pid].score == pytest.approx(p.max())
        assert rows[pid].probabilities == pytest.approx({"0": p[0], "1": p[1]})


def test_a_bad_instance_raises_names_the_field_and_is_counted(
    data: Data, monitor: Monitor, db_url: str
) -> None:
    calls: list[Any] = []

    def predict_fn(rows: Any) -> Any:
        calls.append(rows)
        return [0] * len(rows)

    predict = monitored(monitor, predict_fn)
    with pytest.raises(ValidationError) as info:
        predict([data.rows[0], dict(data.rows[1], **{"mean radius": "large"})])
    assert info.value.code == "wrong_type"
    assert info.value.errors[0].field == "mean radius"
    assert calls == []  # the model never ran
    text = scrape(monitor)
    assert value(text, "inferwatch_requests_rejected_total", model="tumour", reason="wrong_type")
    assert value(text, "inferwatch_requests_total", **MV, status="422") == 1
    assert monitor.flush()
    assert stored(db_url) == {}


def test_a_raising_model_is_counted_as_500_and_reraised(
    data: Data, monitor: Monitor, db_url: str
) -> None:
    class Broken(Exception):
        pass

    def explode(rows: Any) -> Any:
        raise Broken("out of memory")

    predict = monitored(monitor, explode)
    with pytest.raises(Broken):
        predict(data.rows)
    short = monitored(monitor, lambda rows: [0])
    with pytest.raises(ModelError, match="1 predictions for"):
        short(data.rows)
    text = scrape(monitor)
    assert value(text, "inferwatch_requests_total", **MV, status="500") == 2
    assert value(text, "inferwatch_requests_total", **MV, status="200") == 0
    assert value(text, "inferwatch_inflight_requests", model="tumour") == 0
    assert monitor.flush()
    assert stored(db_url) == {}


def test_the_trace_id_is_stored(data: Data, monitor: Monitor, db_url: str) -> None:
    predict = monitored(monitor, data.model)
    _, ids = predict.with_ids(data.rows[:2], trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    assert monitor.flush()
    assert {stored(db_url)[i].trace_id for i in ids} == {"4bf92f3577b34da6a3ce929d0e0e4736"}


def test_what_it_refuses(data: Data, monitor: Monitor) -> None:
    with pytest.raises(ValueError, match=r"from_reference or Monitor\.from_schema"):
        monitored(Monitor(MemoryStore()), data.model)

    async def coroutine(rows: Any) -> Any:
        return rows

    with pytest.raises(TypeError, match="synchronous"):
        monitored(monitor, coroutine)
    with pytest.raises(TypeError, match="not an estimator"):
        monitored(monitor, data.model, classes=[0, 1])
    with pytest.raises(TypeError, match="function of a batch"):
        monitored(monitor, 42)
    assert isinstance(monitored(monitor)(lambda rows: rows), Monitored)


def test_a_regressor_from_a_schema_monitor(tmp_path: Any) -> None:
    """A monitor with a schema and no reference; a regressor's floats are logged as
    outputs and never counted as classes."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from inferwatch.schema import infer_schema

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X, y)
    schema = infer_schema({c: X[c].to_numpy() for c in X.columns}, task="regression")
    url = f"sqlite:///{tmp_path / 'd.db'}"
    monitor = Monitor.from_schema(schema, model="sugar", version="2", store=url)
    try:
        predict = monitored(monitor, model)
        out, ids = predict.with_ids(X.iloc[:25])
        np.testing.assert_allclose(out, model.predict(X.iloc[:25]))
        text = scrape(monitor)
        assert value(text, "inferwatch_requests_total", model="sugar", version="2", status="200")
        counted = [
            v for (name, _), v in samples(text).items() if name == "inferwatch_predictions_total"
        ]
        assert sum(counted) == 0  # floats are never classes
        assert monitor.flush()
        rows = stored(url, "sugar", "2")
        assert [rows[i].output for i in ids] == pytest.approx(out)
    finally:
        monitor.close()
