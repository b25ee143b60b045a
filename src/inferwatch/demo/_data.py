"""Demo data: customers of a subscription service, and a churn model trained on them.

``drift`` (0 = like the training data, 1 = fully drifted) moves income, spend, plan
mix, support tickets and autopay, so the demo's later traffic drifts the way real
inputs do: gradually, in several features at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

__all__ = ["DEMO_MODEL", "make_customers", "prepare_workdir", "to_instances"]

DEMO_MODEL = "churn"
FEATURES = (
    "age",
    "tenure_months",
    "income",
    "monthly_spend",
    "support_tickets",
    "plan",
    "region",
    "autopay",
)
TARGET = "churned"


def make_customers(n: int, rng: np.random.Generator, drift: float = 0.0) -> pd.DataFrame:
    """``n`` customers with a ``churned`` label; ``drift`` in [0, 1] shifts the inputs."""
    plan_p = np.array([0.5, 0.3, 0.2]) * (1 - drift) + np.array([0.2, 0.3, 0.5]) * drift
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "tenure_months": rng.integers(0, 120, n),
            "income": np.round(rng.lognormal(10.6 + 0.35 * drift, 0.45, n), 2),
            "monthly_spend": np.round(rng.gamma(2.0, 25.0 * (1 + 0.6 * drift), n), 2),
            "support_tickets": rng.poisson(1.0 + 2.0 * drift, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=plan_p),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "autopay": rng.random(n) < 0.65 - 0.3 * drift,
        }
    )
    logit = (
        -0.4
        + 0.45 * df["support_tickets"]
        - 0.025 * df["tenure_months"]
        + 0.012 * (df["monthly_spend"] - 50)
        - 0.8 * df["autopay"]
        + df["plan"].map({"basic": 0.5, "plus": 0.0, "pro": -0.5})
    )
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    df[TARGET] = np.where(churn, "yes", "no")
    return df


def to_instances(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts of plain Python values (the predict API's ``instances``)."""
    out = []
    for row in df[list(FEATURES)].itertuples(index=False):
        out.append(
            {
                "age": int(row.age),
                "tenure_months": int(row.tenure_months),
                "income": float(row.income),
                "monthly_spend": float(row.monthly_spend),
                "support_tickets": int(row.support_tickets),
                "plan": str(row.plan),
                "region": str(row.region),
                "autopay": bool(row.autopay),
            }
        )
    return out


def _train(df: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["age", "tenure_months", "income", "monthly_spend", "support_tickets", "autopay"]
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
            ("num", StandardScaler(), numeric),
        ]
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000))])
    return model.fit(df[list(FEATURES)], df[TARGET])


#: the demo runs minutes, not days: the default pack's ``for`` durations are divided by
#: this, and its rate windows by :data:`DEMO_WINDOW_SCALE` (at least 30 s)
DEMO_FOR_SCALE = 60
DEMO_WINDOW_SCALE = 10


def demo_alerting(alert_webhook: str | None = None) -> dict[str, Any]:
    """The demo's ``alerting`` section: the default pack scaled to the demo's short windows
    (its drift alerts fire within about a minute of the drift starting), evaluated every
    5 s, and a webhook receiver when ``alert_webhook`` is given."""
    from inferwatch.rules import default_rules, rule_to_dict

    rules = []
    for rule in default_rules():
        entry = rule_to_dict(rule)
        entry["window"] = f"{max(30, round(rule.window / DEMO_WINDOW_SCALE))}s"
        entry["for"] = f"{round(rule.for_ / DEMO_FOR_SCALE)}s"
        rules.append(entry)
    section: dict[str, Any] = {
        "evaluation_interval": "5s",
        "rules": rules,
        "route": {"group_wait": "5s", "group_interval": "30s", "repeat_interval": "1h"},
    }
    if alert_webhook is not None:
        section["receivers"] = [{"name": "webhook", "type": "webhook", "url": alert_webhook}]
    return section


def prepare_workdir(
    workdir: Path,
    *,
    port: int,
    seed: int = 7,
    n_reference: int = 5000,
    alert_webhook: str | None = None,
) -> Path:
    """Train the model and write model, reference, schema and ``inferwatch.yaml``.

    Returns the config path.  Existing files are overwritten; the store is kept.
    """
    import joblib

    from inferwatch.io import infer_schema_from_file, save_schema

    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train = make_customers(n_reference * 2, rng)
    model = _train(train)
    joblib.dump(model, workdir / "model.joblib")
    reference = make_customers(n_reference, rng)
    reference["prediction"] = model.predict(reference[list(FEATURES)])
    reference.to_parquet(workdir / "reference.parquet", index=False)
    schema = infer_schema_from_file(
        workdir / "reference.parquet", target=TARGET, prediction="prediction"
    )
    save_schema(schema, workdir / "schema.yaml")
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"url": "sqlite:///inferwatch.db"},
        # short windows so the demo's drift shows on /metrics within a minute
        "drift": {"window_seconds": 20, "evaluation_interval_seconds": 5},
        # and performance windows of a minute, judged once 30 labels came back
        "performance": {"window_seconds": 60, "min_labels": 30},
        "models": [
            {
                "name": DEMO_MODEL,
                "version": "1",
                "path": "model.joblib",
                "schema": "schema.yaml",
                "reference": "reference.parquet",
                "target": TARGET,
            }
        ],
        "alerting": demo_alerting(alert_webhook),
    }
    path = workdir / "inferwatch.yaml"
    header = "# Written by `inferwatch demo`; edit freely and run `inferwatch serve -c` on it.\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path
