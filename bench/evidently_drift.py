"""The anchor: Evidently 0.7's data-drift preset on the same files, verdicts as JSON.

Runs in its own virtualenv (Evidently 0.7 needs pandas < 3; it is not a dependency of
inferwatch): ``bash bench/setup_anchors.sh`` creates ``bench/.venv-anchors``.

    bench/.venv-anchors/bin/python bench/evidently_drift.py REFERENCE.parquet CURRENT.parquet
"""

from __future__ import annotations

import json
import sys

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def main() -> None:
    ref = pd.read_parquet(sys.argv[1])
    cur = pd.read_parquet(sys.argv[2])
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    data = snapshot.dict()
    out: dict[str, dict[str, object]] = {}
    for metric in data["metrics"]:
        cfg = metric.get("config", {}) or {}
        if not str(cfg.get("type", "")).endswith(":ValueDrift"):
            continue
        column, method, threshold = cfg["column"], cfg.get("method"), cfg.get("threshold")
        value = float(metric["value"])
        p_value_test = "p_value" in str(method)
        drift = value < threshold if p_value_test else value >= threshold
        out[column] = {"method": method, "value": value, "threshold": threshold, "drift": drift}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
