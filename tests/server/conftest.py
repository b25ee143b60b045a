"""Server fixtures: tiny real scikit-learn models, a served app on a MemoryStore, a test client."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from starlette.exceptions import StarletteDeprecationWarning

from inferwatch.config import (
    AlertingSettings,
    ApiKey,
    AuthSettings,
    ServerSettings,
    Settings,
    load_settings,
)
from inferwatch.demo import prepare_workdir
from inferwatch.metrics import Metrics
from inferwatch.models import SklearnAdapter
from inferwatch.monitor import Monitor
from inferwatch.ports import ModelAdapter, Store
from inferwatch.schema import Schema, infer_schema
from inferwatch.server import ServedModel, create_app
from inferwatch.server._alerting import build_alerting
from inferwatch.server._batching import BatchSettings
from inferwatch.store import MemoryStore
from inferwatch.tracing import Tracing

with warnings.catch_warnings():
    # starlette asks for httpx2 when only httpx is installed; the client works the same
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]

FEATURES = ("age", "income", "plan")
PLANS = ("basic", "plus", "pro")

# one key per role, and an admin; each at least 16 characters
KEYS = {
    "predict": "predict-key-0123456789",
    "read": "read-key-0123456789abc",
    "feedback": "feedback-key-0123456789",
    "admin": "admin-key-0123456789ab",
}


def make_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000.0, 12_000.0, n),
            "plan": rng.choice(PLANS, n),
        }
    )


def instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts of plain Python values."""
    return [
        {"age": int(r.age), "income": float(r.income), "plan": str(r.plan)}
        for r in frame.itertuples(index=False)
    ]


def _preprocess() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )


@dataclass
class Trained:
    frame: pd.DataFrame
    classifier: Pipeline
    regressor: Pipeline
    schema: Schema
    regression_schema: Schema


@pytest.fixture(scope="session")
def trained() -> Trained:
    """A classifier and a regressor on the same numeric + categorical features (seeded)."""
    rng = np.random.default_rng(7)
    frame = make_frame(rng, 300)
    plan_effect = frame["plan"].map({"basic": -1.0, "plus": 0.0, "pro": 1.5})
    score = (frame["income"] - 50_000) / 12_000 + plan_effect + rng.normal(0, 0.5, len(frame))
    churn = np.where(score > 0, "yes", "no")
    spend = 20 + frame["income"] / 1000 + 5 * plan_effect + rng.normal(0, 2, len(frame))
    classifier = Pipeline([("prep", _preprocess()), ("model", LogisticRegression())])
    classifier.fit(frame, churn)
    regressor = Pipeline([("prep", _preprocess()), ("model", Ridge())]).fit(frame, spend)
    columns = {c: frame[c].to_numpy() for c in FEATURES}
    schema = infer_schema({**columns, "churn": churn}, target="churn")
    regression_schema = infer_schema(
        {**columns, "spend": spend.to_numpy()}, target="spend", task="regression"
    )
    return Trained(frame, classifier, regressor, schema, regression_schema)


@dataclass
class Served:
    """An app with everything it was built from, for tests to look behind it."""

    app: FastAPI
    settings: Settings
    store: Any
    monitor: Monitor
    metrics: Metrics
    models: dict[str, ServedModel] = field(default_factory=dict)

    def metrics_text(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.metrics.registry).decode()

    def sample(self, name: str, **labels: str) -> float:
        return sample(self.metrics_text(), name, **labels)


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


AppFactory = Callable[..., Served]


@pytest.fixture
def make_app(trained: Trained) -> AppFactory:
    """Build an app serving ``churn`` (classifier) and ``spend`` (regressor) by default."""

    def factory(
        *,
        server: Mapping[str, Any] | None = None,
        auth: Mapping[str, Any] | None = None,
        keys: bool = False,
        store: Store | None = None,
        extra_models: Sequence[tuple[str, ModelAdapter, Schema]] = (),
        alerting: Mapping[str, Any] | None = None,
        batching: Mapping[str, BatchSettings] | None = None,
        tracing: Tracing | None = None,
    ) -> Served:
        auth_settings = dict(auth or {})
        if keys:
            auth_settings["keys"] = [
                ApiKey(name=role, key=key, roles=[role]) for role, key in KEYS.items()
            ]
        settings = Settings(
            server=ServerSettings(**dict(server or {})),
            auth=AuthSettings(**auth_settings),
            alerting=AlertingSettings(**dict(alerting or {})),
        )
        metrics = Metrics(CollectorRegistry(), process=False)
        the_store = store if store is not None else MemoryStore()
        monitor = Monitor(the_store, metrics=metrics, flush_interval=0.02)
        specs: list[tuple[str, ModelAdapter, Schema]] = [
            ("churn", SklearnAdapter(trained.classifier, trained.schema.names), trained.schema),
            (
                "spend",
                SklearnAdapter(trained.regressor, trained.regression_schema.names),
                trained.regression_schema,
            ),
            *extra_models,
        ]
        models = {
            name: ServedModel.build(
                name,
                "1",
                adapter,
                schema,
                metrics,
                max_batch=settings.server.max_batch_size,
                allow_extra=settings.server.allow_extra_features,
                batching=(batching or {}).get(name),
            )
            for name, adapter, schema in specs
        }
        service = build_alerting(
            settings.alerting, registry=metrics.registry, store=the_store, instance="test"
        )
        app = create_app(
            settings,
            models=list(models.values()),
            monitor=monitor,
            store=the_store,
            metrics=metrics,
            alerting=service,
            tracing=tracing,
        )
        return Served(app, settings, the_store, monitor, metrics, models)

    return factory


@pytest.fixture
def served(make_app: AppFactory) -> Served:
    return make_app()


@pytest.fixture
def client(served: Served) -> Iterator[TestClient]:
    with TestClient(served.app) as c:
        yield c


@pytest.fixture
def good_rows(trained: Trained) -> list[dict[str, Any]]:
    return instances(trained.frame.iloc[:5])


@pytest.fixture(scope="module")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's model, 1,000-row reference and config, written once per test module."""
    path = tmp_path_factory.mktemp("demo")
    prepare_workdir(path, port=0, n_reference=1000)
    return path


def live_settings(workdir: Path, tmp_path: Path, **drift: Any) -> Settings:
    """The demo config with a fast live loop: a store in ``tmp_path`` flushed every 50 ms,
    windows judged every 0.2 s, one day long (so a test never crosses a window edge)."""
    return load_settings(
        workdir / "inferwatch.yaml",
        {
            "store": {"url": f"sqlite:///{tmp_path}/live.db", "flush_interval_seconds": 0.05},
            "drift": {"evaluation_interval_seconds": 0.2, "window_seconds": 86_400, **drift},
        },
    )
