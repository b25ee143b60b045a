"""Estimate bands and their reconciliation with realised values."""

from __future__ import annotations

import json
import math

from inferwatch.estimate import Estimate, reconcile


def test_reconcile_verdicts() -> None:
    est = Estimate(0.9, 0.88, 0.92, 0.95, "cbpe")
    inside = reconcile(est, 0.91)
    assert inside.inside and inside.verdict == "consistent"
    assert math.isclose(inside.gap, 0.01)
    below = reconcile(est, 0.80)
    assert not below.inside and below.verdict == "concept_drift_suspected"
    assert reconcile(est, 0.88).inside  # the band's ends are inside
    assert reconcile(est, math.nan).verdict == "undetermined"
    nan = Estimate(math.nan, math.nan, math.nan, 0.95, "cbpe")
    assert reconcile(nan, 0.5).verdict == "undetermined"


def test_round_trip_json() -> None:
    est = Estimate(0.9, 0.88, 0.92, 0.95, "dle")
    assert Estimate.from_dict(json.loads(json.dumps(est.to_dict()))) == est
    nan = Estimate(math.nan, math.nan, math.nan, 0.95, "cbpe")
    data = json.loads(json.dumps(nan.to_dict()))
    assert data["value"] is None and math.isnan(Estimate.from_dict(data).value)
    assert json.loads(json.dumps(reconcile(nan, 0.5).to_dict()))["verdict"] == "undetermined"
