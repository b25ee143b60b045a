"""Typed settings: defaults < ``inferwatch.yaml`` < ``INFERWATCH_*`` environment < CLI flags.

pydantic-settings does the layering (``settings_customise_sources`` holds the order in
one place); this module adds what a user needs around it: relative paths in the YAML
resolve against the file's folder, API keys are hashed as soon as they are read, and a
bad value fails with the dotted path of the key and what was expected.
"""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from inferwatch.errors import ConfigError

if TYPE_CHECKING:
    from inferwatch.alerting import Route
    from inferwatch.evaluate import DriftOptions
    from inferwatch.rules import SLO, Rule

__all__ = [
    "ROLES",
    "ApiKey",
    "AuthSettings",
    "ChildRouteSettings",
    "DriftSettings",
    "FleetSettings",
    "HistorySettings",
    "LoggingSettings",
    "ModelSettings",
    "PerformanceSettings",
    "PreviousVersion",
    "Role",
    "RouteSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "TracingSettings",
    "check_settings",
    "format_errors",
    "is_loopback",
    "load_settings",
    "mask_url",
]

Role = Literal["predict", "feedback", "read", "admin"]
ROLES: tuple[Role, ...] = ("predict", "feedback", "read", "admin")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_STORE_SCHEMES = frozenset(
    {"sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg", "memory"}
)
_STORE_URL_HINT = (
    "expected sqlite:///path/to/inferwatch.db or postgresql+psycopg://user@host/dbname"
)
#: values that are never repeated in an error (a key written unquoted is still a key)
_SECRET_FIELDS = frozenset({"key", "key_sha256", "password"})

_yaml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("yaml", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerSettings(_Section):
    """The HTTP server."""

    host: str = Field(
        "127.0.0.1", description="Address to bind; anything but loopback needs API keys."
    )
    port: int = Field(8000, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    max_batch_size: int = Field(1000, ge=1, description="Most instances in one predict request.")
    max_labels_per_request: int = Field(
        10_000, ge=1, description="Most labels in one feedback request."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted, in bytes."
    )
    allow_extra_features: bool = Field(
        False, description="Accept and drop features that are not in the schema."
    )
    docs: bool = Field(True, description="Publish the OpenAPI document and /docs.")
    access_log: bool = Field(
        False,
        description="Log a line per HTTP request (uvicorn's access log); off by default: "
        "every prediction is already recorded in the store and the metrics.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A connection's request headers must arrive within this of it opening "
        "(or of the previous answer); past it: 408 (closed unanswered if nothing was sent).",
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="A request's body must arrive within this of its headers: 408."
    )
    keepalive_timeout_seconds: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this."
    )
    max_connections: int = Field(
        1024,
        ge=1,
        description="Most open connections; past it the longest-waiting idle or half-sent one "
        "makes room, or, when all are busy, the new one gets 503 (lowered to fit ulimit -n).",
    )
    workers: int = Field(
        1,
        ge=1,
        le=256,
        description="Worker processes (serve --workers); /metrics on any of them sums every "
        "worker's counts, exemplars kept (README, Workers).",
    )


class StoreSettings(_Section):
    """Where predictions, labels and later evaluations are kept."""

    url: str = Field(
        "sqlite:///inferwatch.db",
        description="SQLAlchemy URL: sqlite:///FILE or postgresql+psycopg://USER:PASS@HOST/DB.",
    )
    auto_migrate: bool = Field(True, description="Apply migrations at start.")
    queue_size: int = Field(10_000, ge=1, description="Rows the prediction log may buffer.")
    batch_size: int = Field(500, ge=1, description="Rows per batched insert.")
    flush_interval_seconds: float = Field(
        0.5, gt=0, description="Longest a row waits in the buffer before it is written."
    )
    enqueue_timeout_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a full buffer blocks Monitor.log in your own code before rows "
        "are dropped; the server never waits (a full buffer drops and counts at once).",
    )
    statement_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Bound on every store call: PostgreSQL statement_timeout, connect and "
        "pool timeouts, SQLite busy timeout; the log writer waits this plus 1 s for a store "
        "that answers nothing (frozen), then spills the batch.",
    )
    spill_path: Path | None = Field(
        None,
        description="Append-only file for rows the store did not take (down or past the "
        "timeout), replayed when it answers; default: FILE.spill beside a SQLite FILE, "
        "else inferwatch-spill.bin in the working directory.",
    )
    spill_max_bytes: int = Field(
        1 << 30,
        ge=0,
        description="Largest the spill file may grow; past it rows are lost and counted "
        "(outcome failed). 0: no spill file.",
    )
    durability: Literal["buffered", "strict"] = Field(
        "buffered",
        description="buffered: answer at once, write behind (spill on outage); strict: a "
        "predict is answered only once its row is committed, else 503 with Retry-After.",
    )
    sample_rate: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of prediction rows written to the store (by a hash of the id); "
        "live metrics, windows and drift still see every prediction.",
    )
    jsonl_path: Path | None = Field(
        None,
        description="Also append every prediction row to this JSON Lines file (rotated; "
        "not fsynced: a copy for tools that tail a file).",
    )
    jsonl_max_bytes: int = Field(
        100 << 20, ge=1, description="Size at which the JSONL file is rotated to PATH.1."
    )
    jsonl_backups: int = Field(
        5, ge=0, description="Rotated JSONL files kept (PATH.1 ... PATH.N); 0: truncate."
    )
    drain_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="At shutdown (SIGTERM), the longest spent writing the buffer and "
        "replaying the spill file; what is left stays in the spill file for the next start.",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        # checked at load, so `config validate` and `serve` refuse the same URLs
        match = _URL_SCHEME.match(value)
        if match is None:
            raise ValueError(f"not a database URL; {_STORE_URL_HINT}")
        scheme = match.group(1).lower()
        if scheme in _STORE_SCHEMES:
            return value
        if scheme.startswith(("postgresql+", "postgres+")):
            raise ValueError(
                f"unsupported PostgreSQL driver {scheme!r}; use postgresql+psycopg:// "
                "(pip install 'inferwatch[postgres]')"
            )
        raise ValueError(f"unsupported database {scheme!r}; {_STORE_URL_HINT}")


#: the model adapters (``inferwatch.models.FLAVORS`` has one loader for each; a test keeps
#: the two in step)
ModelFlavor = Literal["sklearn", "onnx", "python", "torchscript", "keras", "mlflow"]


class PreviousVersion(_Section):
    """An older version of a model, kept loaded so a rollback is instant (``models[].previous``)."""

    version: str = Field(min_length=1, max_length=100)
    path: Path = Field(description="Model file of this version.")
    flavor: ModelFlavor | None = Field(
        None,
        description="Model adapter (if absent: the one the file's suffix names, else the "
        "model's own).",
    )


def _from_yaml_folder(path: Any) -> Any:
    """A relative model path as it will resolve (against the YAML file's folder), so the
    flavor a folder names (an MLflow model's MLmodel file) is found before paths resolve."""
    from inferwatch.models._loader import is_registry_uri

    yaml_path = _yaml_file.get()
    if not isinstance(path, str | Path) or yaml_path is None or Path(path).is_absolute():
        return path
    return path if is_registry_uri(path) else yaml_path.parent / path


class ModelSettings(_Section):
    """One served model version."""

    name: str = Field(description="Name in the URL: /v1/models/{name}/predict.")
    version: str = Field("1", min_length=1, max_length=100)
    path: Path = Field(
        description="Model file (sklearn: a joblib or pickle file; onnx: a .onnx file; "
        "torchscript: a .pt file; keras: a .keras or .h5 file); for flavor mlflow, a model "
        "folder (with an MLmodel file) or models:/name/version or models:/name@alias; for "
        "flavor python, [FOLDER/]module:attribute naming an object with predict(X)."
    )
    flavor: ModelFlavor = Field(
        "sklearn",
        description="Model adapter: sklearn, onnx, torchscript, keras, mlflow or python (if "
        "absent: the one the path names -- .onnx, .pt, .keras/.h5, an MLmodel folder or "
        "models:/ URI -- else sklearn).",
    )
    classes: list[str] | None = Field(
        None,
        min_length=1,
        description="Class names in the order of a torchscript, keras or mlflow model's "
        "output columns (those files do not record them); 0, 1, ... if absent.",
    )
    tracking_uri: str | None = Field(
        None,
        min_length=1,
        description="MLflow tracking server (or sqlite:/// database) a models:/ path is "
        "resolved against; MLflow's own MLFLOW_TRACKING_URI if absent.",
    )
    schema_path: Path | None = Field(
        None, alias="schema", description="Schema YAML; inferred from the reference if absent."
    )
    reference: Path | None = Field(None, description="Reference dataset (CSV, Parquet, JSONL).")
    target: str | None = Field(None, description="Target column in the reference.")
    prediction: str | None = Field(None, description="Prediction column in the reference.")
    task: Literal["classification", "regression"] | None = Field(
        None,
        description="Force the model's task (how its target and predictions are judged); "
        "inferred from the target's type and distinct values if absent.",
    )
    trusted_model_hashes: list[str] = Field(
        default_factory=list,
        description="SHA-256 hex digests of the model files allowed to load; when set, any "
        "other file is refused before it is unpickled (a pickle runs code when loaded).",
    )
    threads: int = Field(
        1,
        ge=1,
        le=256,
        description="Threads one model call may use (ONNX Runtime's intra-op threads); 1 by "
        "default, since a server runs many calls at once.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Threads that run this model's calls, off the event loop; more helps "
        "models that release the GIL (ONNX Runtime, numpy) on several cores.",
    )
    max_batch_size: int = Field(
        64,
        ge=1,
        description="Most rows of concurrent requests gathered into one model call (a "
        "larger request runs alone, whole).",
    )
    max_wait_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="Longest an idle worker waits for more requests to batch: only while "
        "requests come together, and at most a quarter of the model's mean call time (a "
        "lone request is never delayed); 0: never.",
    )
    timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A request whose model answer takes longer gets 504 model_timeout.",
    )
    max_queued_rows: int = Field(
        10_000,
        ge=1,
        description="Rows that may wait for this model; past it requests get 503 overloaded.",
    )
    shadow_of: str | None = Field(
        None,
        description="Run this version in shadow of the named model: it scores a copy of "
        "that model's traffic after the answer is sent; its outputs are logged under its "
        "own name and version, never returned.",
    )
    shadow_tolerance: float = Field(
        0.0,
        ge=0,
        description="A shadow regressor agrees with its primary when the outputs differ by "
        "at most this much (classifiers agree on equal classes).",
    )
    ab_group: str | None = Field(
        None,
        description="A/B split: requests to /v1/models/{ab_group}/predict go to the "
        "group's members in proportion to their traffic_share.",
    )
    traffic_share: float | None = Field(
        None,
        gt=0,
        le=100,
        description="Percent of the ab_group's requests this version answers (the "
        "group's shares sum to 100).",
    )
    positive_class: str | None = Field(
        None,
        description="The positive class of a binary classifier (precision, recall, F1, "
        "fairness); the second of the sorted classes if absent.",
    )
    segments: list[str] = Field(
        default_factory=list,
        description="Input columns whose values get their own performance metrics "
        "(at most performance.max_segment_values values each, the rest under 'other').",
    )
    protected_attribute: str | None = Field(
        None,
        description="Input column across whose groups fairness is judged (classifiers).",
    )
    previous: list[PreviousVersion] = Field(
        default_factory=list,
        description="Older versions kept loaded for a rollback, newest first (version, "
        "path, flavor); they share the model's schema and reference.  A rollback (an alert "
        "action or POST /v1/models/{name}/rollback) makes the next older one live.",
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not MODEL_NAME.match(value):
            raise ValueError(
                "must start with a letter or digit and hold only letters, digits, '.', '_', '-'"
                " (at most 100 characters)"
            )
        return value

    @field_validator("trusted_model_hashes")
    @classmethod
    def _sha256_digests(cls, value: list[str]) -> list[str]:
        digests = [str(v).strip().lower() for v in value]
        for i, digest in enumerate(digests):
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(
                    f"[{i}] must be a SHA-256 hex digest (64 hex characters, "
                    "e.g. from `sha256sum model.joblib`)"
                )
        return digests

    @model_validator(mode="before")
    @classmethod
    def _flavor_from_path(cls, data: Any) -> Any:
        # no flavor given: the one the model file's suffix names (model.onnx is onnx)
        if isinstance(data, dict) and data.get("flavor") is None and "path" in data:
            from inferwatch.models._loader import flavor_of

            try:
                flavor = flavor_of(_from_yaml_folder(data["path"]))
            except TypeError:  # not a path: the field's own check names it
                return data
            if flavor is not None:
                data = {**data, "flavor": flavor}
        return data

    @model_validator(mode="after")
    def _schema_source(self) -> ModelSettings:
        if self.schema_path is None and self.reference is None:
            raise ValueError("give 'schema' (a schema YAML) or 'reference' (a dataset to infer it)")
        seen = {self.version}
        for i, p in enumerate(self.previous):
            if p.version in seen:
                raise ValueError(f"previous[{i}].version: {p.version!r} is listed twice")
            seen.add(p.version)
            if p.flavor is None:
                from inferwatch.models._loader import flavor_of

                named = flavor_of(_from_yaml_folder(p.path))
                p.flavor = cast(ModelFlavor | None, named) or self.flavor
        if self.previous and (self.shadow_of is not None or self.ab_group is not None):
            raise ValueError(
                "previous versions (a rollback) apply to a model served under its own "
                "name, not to a shadow or an A/B member"
            )
        return self

    def versions(self) -> list[ModelSettings]:
        """This version, then each previous one as settings of its own (same schema,
        reference, target and options; its own version, path and flavor)."""
        out = [self]
        for p in self.previous:
            update: dict[str, Any] = {"version": p.version, "path": p.path, "previous": []}
            if p.flavor is not None:
                update["flavor"] = p.flavor
            out.append(self.model_copy(update=update))
        return out


class ApiKey(_Section):
    """An API key and its roles.  The key is hashed (SHA-256) as soon as it is read."""

    name: str = Field(min_length=1, max_length=100)
    key: SecretStr | None = Field(None, description="The key itself; hashed at load.")
    key_sha256: str | None = Field(None, description="Or its SHA-256 hex digest.")
    roles: list[Role] = Field(min_length=1)

    @model_validator(mode="after")
    def _hash(self) -> ApiKey:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of 'key' and 'key_sha256'")
        if self.key is not None:
            secret = self.key.get_secret_value()
            if len(secret) < 16:
                raise ValueError("an API key needs at least 16 characters")
            digest = hashlib.sha256(secret.encode()).hexdigest()
            object.__setattr__(self, "key_sha256", digest)
            object.__setattr__(self, "key", None)
        elif not re.fullmatch(r"[0-9a-f]{64}", self.key_sha256 or ""):
            raise ValueError("'key_sha256' must be 64 lowercase hex characters")
        return self


class AuthSettings(_Section):
    """API keys and which routes stay open without one."""

    keys: list[ApiKey] = Field(default_factory=list)
    open_metrics: bool = Field(True, description="/metrics answers without a key.")
    open_health: bool = Field(True, description="/healthz and /readyz answer without a key.")
    open_docs: bool = Field(True, description="/docs and /openapi.json answer without a key.")

    @property
    def enabled(self) -> bool:
        return bool(self.keys)


class DriftSettings(_Section):
    """How drift is judged: batch reports and checks, and the server's live windows.

    The first four keys serve both; the others shape the live windows that the server
    profiles and evaluates (``inferwatch serve`` with a model ``reference``).
    """

    drift_share: float = Field(
        0.5, gt=0, le=1, description="Dataset drift when at least this share of features drift."
    )
    tests: dict[str, str] = Field(
        default_factory=dict, description="Per-feature test, overriding the default rule."
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-feature threshold for its test."
    )
    correction: Literal["bonferroni", "benjamini_hochberg"] | None = Field(
        None, description="Multiple-testing correction of p-values across features."
    )
    window_seconds: float = Field(
        3600.0,
        gt=0,
        description="Live windows: length of a window; a prediction falls in the window "
        "starting at floor(timestamp / window_seconds) * window_seconds (UTC epoch).",
    )
    evaluation_interval_seconds: float = Field(
        60.0, gt=0, description="Live windows: how often the current window is evaluated."
    )
    min_window_rows: int = Field(
        100, ge=1, description="Live windows: a window with fewer rows is not judged."
    )
    calibration: Literal["reference", "fixed"] = Field(
        "reference",
        description="Live windows: 'reference' judges each feature against a threshold "
        "calibrated on the reference at the window's size; 'fixed' uses the tests' "
        "usual thresholds (p < 0.05, distance >= 0.1, ...).",
    )
    calibration_quantile: float = Field(
        0.99,
        gt=0.5,
        lt=1,
        description="Live windows: drift when the statistic exceeds this quantile of its "
        "no-drift distribution (the per-feature false-alarm rate is 1 - quantile).",
    )
    calibration_resamples: int = Field(
        200,
        ge=20,
        le=100_000,
        description="Live windows: resamples drawn to estimate that distribution.",
    )

    @field_validator("tests")
    @classmethod
    def _known_tests(cls, value: dict[str, str]) -> dict[str, str]:
        from inferwatch.stats import REGISTRY

        for feature, name in value.items():
            if name not in REGISTRY:
                raise ValueError(
                    f"{feature}: no drift test named {name!r}; available: {', '.join(REGISTRY)}"
                )
        return value

    def to_options(self, *, multivariate: bool = False) -> DriftOptions:
        """The engine's options for these settings (reports, checks and live windows).

        The live-window keys (``window_seconds``, ``min_window_rows``, ``calibration*``)
        are passed to :func:`inferwatch.evaluate.live_target` by name.
        """
        from inferwatch.evaluate import DriftOptions

        return DriftOptions.from_settings(self, multivariate=multivariate)


class PerformanceSettings(_Section):
    """Model quality over time: labels joined by prediction id, estimated before they come."""

    enabled: bool = Field(
        True,
        description="Track performance for models whose reference holds the target column.",
    )
    window_seconds: float = Field(
        3600.0, gt=0, description="Performance windows: length in seconds, by prediction time."
    )
    retention_windows: int = Field(
        48,
        ge=1,
        le=10_000,
        description="Performance windows kept in memory per model version (late labels of "
        "older predictions are stored and count when the window is recomputed).",
    )
    min_labels: int = Field(
        30, ge=1, description="Labels a window needs before its realised metrics are shown."
    )
    estimate: bool = Field(
        True, description="Estimate performance before labels (CBPE, direct loss estimation)."
    )
    false_alarm_budget: int = Field(
        100_000,
        ge=1_000,
        description="Stream detectors: at most one false alarm per this many stable "
        "labelled predictions.",
    )
    max_segment_values: int = Field(
        20, ge=1, le=1000, description="Values per segment column; the rest count as 'other'."
    )
    fairness_difference_threshold: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Fairness: a parity, equalized-odds or equal-opportunity difference "
        "whose whole confidence interval is above this is unfair.",
    )
    fairness_ratio_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Fairness: a disparate impact ratio whose whole confidence interval is "
        "below this is unfair (the four-fifths rule).",
    )
    gap_tolerance: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Reconciliation: a realised value this close to the estimate is never "
        "a concept-drift finding, however narrow the estimate's band.",
    )


class TracingSettings(_Section):
    """OpenTelemetry spans for each prediction request, exported over OTLP/HTTP."""

    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces URL (e.g. http://127.0.0.1:4318/v1/traces); unset: "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT if set, else no "
        "tracing at all.",
    )
    service_name: str = Field("inferwatch", min_length=1, description="service.name of the spans.")
    sample_ratio: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of requests traced when the caller sent no traceparent (a "
        "caller's sampled flag is followed).",
    )


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def _seconds(value: Any) -> Any:
    """A Prometheus duration string (``30s``, ``5m``, ``1h30m``) or plain seconds, as the
    rules take them, so one config reads the same in every key."""
    if isinstance(value, str):
        from inferwatch.rules import parse_duration

        return parse_duration(value)  # ValueError: pydantic reports it at the key's path
    return value


class ChildRouteSettings(_Section):
    """One ``alerting.route.routes`` entry: alerts matching all ``matchers`` go to
    ``receiver``; the first matching entry wins unless it says ``continue: true``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    matchers: list[str] = Field(
        min_length=1,
        description="Label matchers, all of which must hold: severity=critical, "
        'model=~"iris|wine", team!=ml.',
    )
    receiver: str = Field(min_length=1, description="The receiver's name.")
    continue_: bool = Field(
        False, alias="continue", description="Also try the routes after this one."
    )

    @field_validator("matchers")
    @classmethod
    def _parse(cls, value: list[str]) -> list[str]:
        from inferwatch.alerting import Matcher

        for text in value:
            Matcher.parse(text)  # ValueError names the matcher
        return value


class RouteSettings(_Section):
    """``alerting.route``: Alertmanager's routing tree, one level of children, for the
    built-in engine and the generated ``alertmanager.yml`` alike."""

    receiver: str | None = Field(
        None, description="Default receiver (null: the first configured; none: log only)."
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname", "model"],
        description="Labels that put alerts in one notification.",
    )
    group_wait: float = Field(
        30.0, ge=0, description="Wait before a new group's first notification (30s, 5m)."
    )
    group_interval: float = Field(
        300.0, gt=0, description="Wait before telling a group of new or resolved alerts."
    )
    repeat_interval: float = Field(
        14_400.0, gt=0, description="Wait before repeating an unchanged notification."
    )
    routes: list[ChildRouteSettings] = Field(
        default_factory=list, description="Child routes: matchers, receiver, continue."
    )

    _durations = field_validator("group_wait", "group_interval", "repeat_interval", mode="before")(
        _seconds
    )


_RECEIVER_TAGS = frozenset({"webhook", "alertmanager", "slack", "pagerduty", "email"})


def _receiver_configs(entries: list[Any]) -> tuple[list[str], list[Any]]:
    """``alerting.receivers`` as notify's config models, and the problems found (one
    ``alerting.receivers[i].key: ...`` line each; a duplicate name too)."""
    from pydantic import TypeAdapter

    from inferwatch._entries import validate_named_entries
    from inferwatch.notify import Receiver

    return validate_named_entries(
        TypeAdapter(Receiver),
        entries,
        path="alerting.receivers",
        tags=_RECEIVER_TAGS,
        tag_key="type",
    )


class AlertingSettings(_Section):
    """Alert rules: the default pack and the configured rules, one spec for the built-in
    engine and the generated PromQL (see :mod:`inferwatch.rules`).

    The rules are kept as the YAML wrote them and checked by the core's
    :func:`~inferwatch.rules.load_rules`, so ``serve``, ``config validate`` and
    ``rules validate`` refuse a bad rule with the same key paths
    (``alerting.rules[3].critical: must be below warning for '<'``), all at once.
    """

    default_pack: bool = Field(
        False, description="Start from the default rule pack (a configured rule of the "
        "same name replaces the default's)."
    )  # fmt: skip
    rules: list[Any] = Field(
        default_factory=list,
        description="Alert rules: name, signal, aggregation, window, comparison, warning, "
        "critical, for, labels, summary, description.",
    )

    slos: list[Any] = Field(
        default_factory=list,
        description="SLO burn-rate alerts: name, sli (availability, latency, accuracy), "
        "objective, threshold (latency, a bucket bound in seconds), period (default 30d).",
    )

    enabled: bool = Field(True, description="Run the built-in engine when there are rules.")
    evaluation_interval: float = Field(
        15.0, gt=0, description="How often the built-in engine evaluates the rules (15s)."
    )
    receivers: list[Any] = Field(
        default_factory=list,
        description="Where alerts go: name, type (webhook, alertmanager, slack, pagerduty, "
        "email) and the type's keys; secrets as *_file or *_env.",
    )
    route: RouteSettings = Field(default_factory=RouteSettings)
    history_retention: float = Field(
        30 * 86_400.0,
        gt=0,
        description="How long alert history and delivery attempts are kept in the store "
        "(30d); older rows are pruned hourly.  Action records are kept.",
    )
    actions: list[Any] = Field(
        default_factory=list,
        description="Automated responses: name, kind (rollback, retrain, scale), when "
        "(label matchers), cooldown, and the kind's keys (see inferwatch.actions).",
    )

    @model_validator(mode="after")
    def _check_actions(self) -> AlertingSettings:
        # each entry becomes the actions package's config model, checked with key paths
        from inferwatch.actions import load_actions

        problems, configs = load_actions(self.actions)
        if problems:
            raise ValueError("\n  ".join(problems))
        object.__setattr__(self, "actions", configs)  # no re-validation loop
        return self

    _interval = field_validator("evaluation_interval", "history_retention", mode="before")(_seconds)

    @model_validator(mode="after")
    def _check_receivers_and_route(self) -> AlertingSettings:
        # Each entry becomes notify's config model (secrets held as SecretStr, so a
        # settings dump masks them); the secrets are resolved by build_notifier at start.
        problems, configs = _receiver_configs(self.receivers)
        if not problems:
            object.__setattr__(self, "receivers", configs)  # no re-validation loop
        names = [getattr(r, "name", None) for r in configs]
        known = ", ".join(n for n in names if n) or "none"
        route = self.route
        if route.receiver is not None and route.receiver not in names:
            problems.append(
                f"alerting.route.receiver: no receiver named {route.receiver!r} "
                f"(configured: {known})"
            )
        for i, child in enumerate(route.routes):
            if child.receiver not in names:
                problems.append(
                    f"alerting.route.routes[{i}].receiver: no receiver named "
                    f"{child.receiver!r} (configured: {known})"
                )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def to_route(self) -> Route:
        """The engine's :class:`~inferwatch.alerting.Route`: pass ``route=...receivers_for``
        and its ``group_*``/``repeat_interval`` to the Dispatcher.  The default receiver
        is the configured one, else the first receiver, else none (alerts are logged)."""
        from datetime import timedelta

        from inferwatch.alerting import Route

        r = self.route
        default = r.receiver
        if default is None and self.receivers:
            default = self.receivers[0].name
        return Route.build(
            default,
            [(c.matchers, c.receiver, c.continue_) for c in r.routes],
            group_by=r.group_by,
            group_wait=timedelta(seconds=r.group_wait),
            group_interval=timedelta(seconds=r.group_interval),
            repeat_interval=timedelta(seconds=r.repeat_interval),
        )

    @model_validator(mode="after")
    def _check_rules(self) -> AlertingSettings:
        from inferwatch.rules import RuleError

        problems: list[str] = []
        for check in (self.to_rules, self.to_slos):
            try:
                check()
            except RuleError as e:
                problems += e.problems
        if not problems:
            # a band keeps one point per step, taken at an evaluation: a step shorter than
            # the evaluation interval would leave holes in the history
            for i, entry in enumerate(self.rules):
                if not isinstance(entry, dict) or not entry.get("unusual"):
                    continue
                rule = next(r for r in self.to_rules() if r.name == entry.get("name"))
                if rule.band is not None and rule.band.step < self.evaluation_interval:
                    problems.append(
                        f"alerting.rules[{i}].unusual.step: {rule.band.step:g} s is shorter "
                        f"than alerting.evaluation_interval ({self.evaluation_interval:g} s)"
                    )
        if problems:
            # one line per problem; format_errors prints a message that names its own
            # paths without repeating the section's
            raise ValueError("\n  ".join(problems)) from None
        return self

    def to_rules(self) -> list[Rule]:
        """The rules in force: the default pack when asked for, then the configured ones."""
        from inferwatch.rules import load_rules

        return load_rules({"default_pack": self.default_pack, "rules": self.rules})

    def to_slos(self) -> list[SLO]:
        """The SLOs (a latency threshold checked against the request histogram's buckets)."""
        from inferwatch.rules import load_slos

        if not self.slos:
            return []
        from inferwatch.metrics import LATENCY_BUCKETS

        return load_slos(self.slos, latency_bounds=LATENCY_BUCKETS)


class HistorySettings(_Section):
    """The server's own history of traffic, latency, confidence, classes and resources
    (inferwatch.history), kept in the store so the dashboard needs no Prometheus."""

    enabled: bool = Field(True, description="Sample the history (a thread of the server).")
    interval_seconds: float = Field(
        10.0, gt=0, le=3600, description="Seconds between samples: one row per model version "
        "and one for the resources per interval (10s; durations like 15s accepted).",
    )  # fmt: skip
    raw_retention: float = Field(
        86_400.0, gt=0, description="How long per-interval rows are kept before they are "
        "folded into rollups (1d).",
    )  # fmt: skip
    rollup_seconds: float = Field(
        300.0, gt=0, description="Length of a rollup bucket (300s): older history is kept at "
        "this resolution.",
    )  # fmt: skip
    rollup_retention: float = Field(
        30 * 86_400.0, gt=0, description="How long rollups are kept (30d).",
    )  # fmt: skip

    _durations = field_validator(
        "interval_seconds", "raw_retention", "rollup_seconds", "rollup_retention", mode="before"
    )(_seconds)

    @model_validator(mode="after")
    def _check_resolutions(self) -> HistorySettings:
        if self.rollup_seconds < self.interval_seconds:
            raise ValueError("rollup_seconds must be at least interval_seconds")
        if self.rollup_retention < self.raw_retention:
            raise ValueError("rollup_retention must be at least raw_retention")
        return self


class FleetSettings(_Section):
    """Replicas sharing one store: which one runs the evaluator and the alert engine."""

    lease_ttl_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="Time to live of the evaluator lease in the store: a replica that dies "
        "holding it loses it after this, and another takes it within a third more.",
    )
    instance: str = Field(
        "",
        max_length=200,
        description="This replica's holder id in the lease table (empty: host:pid:random).",
    )
    share_windows: bool = Field(
        False,
        description="Write this process's live window profiles and performance window "
        "states to the store every share_interval_seconds, and judge each window with "
        "every replica's profiles and labels (replicas sharing one store; off: each judges "
        "its own rows and labels).",
    )
    share_interval_seconds: float = Field(
        5.0,
        ge=0.1,
        le=300,
        description="How often each replica writes its window profiles and performance "
        "states to the store; a "
        "closed window is judged again twice this after it closes.",
    )


class Settings(BaseSettings):
    """Everything inferwatch reads at start."""

    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    models: list[ModelSettings] = Field(default_factory=list)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)

    model_config = SettingsConfigDict(
        env_prefix="INFERWATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: list[ModelSettings]) -> list[ModelSettings]:
        seen: set[str] = set()
        for m in value:
            if m.name in seen:
                raise ValueError(f"model {m.name!r} is listed twice")
            seen.add(m.name)
        problems = _version_problems(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The one place the precedence lives: CLI (init) > environment > YAML > defaults.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _yaml_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def model(self, name: str) -> ModelSettings:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with secrets and passwords masked."""
        data = self.model_dump(mode="json", by_alias=True)
        data["store"]["url"] = mask_url(self.store.url)
        for key in data["auth"]["keys"]:
            key["key"] = None
            key["key_sha256"] = "********"
        return data


def _version_problems(models: list[ModelSettings]) -> list[str]:
    """What is wrong with the shadows and A/B groups of ``models`` (empty when fine)."""
    names = {m.name: m for m in models}
    problems: list[str] = []
    groups: dict[str, list[ModelSettings]] = {}
    for i, m in enumerate(models):
        where = f"models[{i}]"
        if m.shadow_of is not None:
            primary = names.get(m.shadow_of)
            if primary is None:
                problems.append(f"{where}.shadow_of: no model named {m.shadow_of!r}")
            elif primary is m:
                problems.append(f"{where}.shadow_of: a model cannot shadow itself")
            elif primary.shadow_of is not None:
                problems.append(
                    f"{where}.shadow_of: {m.shadow_of!r} is itself a shadow; "
                    "shadow its primary instead"
                )
            if m.ab_group is not None:
                problems.append(f"{where}: a shadow takes no A/B traffic (drop ab_group)")
        if m.ab_group is not None:
            if m.ab_group in names:
                problems.append(f"{where}.ab_group: {m.ab_group!r} is also a model's name")
            elif not MODEL_NAME.match(m.ab_group):
                problems.append(f"{where}.ab_group: {m.ab_group!r} is not a valid name")
            if m.traffic_share is None:
                problems.append(f"{where}.traffic_share: required in an ab_group")
            groups.setdefault(m.ab_group, []).append(m)
        elif m.traffic_share is not None:
            problems.append(f"{where}.traffic_share: only applies with ab_group")
    for group, members in groups.items():
        if len(members) < 2:
            problems.append(f"ab_group {group!r} has one model; a split needs two or more")
        total = sum(m.traffic_share or 0.0 for m in members)
        if abs(total - 100.0) > 1e-6:
            shares = ", ".join(f"{m.name}={m.traffic_share}" for m in members)
            problems.append(
                f"ab_group {group!r}: traffic_share must sum to 100, got {total:g} ({shares})"
            )
    return problems


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _secret(loc: tuple[int | str, ...]) -> bool:
    names = [part for part in loc if isinstance(part, str)]
    return names[:2] == ["auth", "keys"] or any(name in _SECRET_FIELDS for name in names)


def format_errors(exc: pydantic.ValidationError, source: str | None = None) -> str:
    """One line per problem: ``server.port: Input should be ... (got 'abc')``.

    A secret's value is never repeated (anything under ``auth.keys``, even a key that
    YAML read as a number), and a database URL is shown with its password masked.
    """
    lines = []
    for err in exc.errors():
        parts = tuple(err["loc"])
        loc = _loc(parts)
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        got_text = "" if isinstance(got, Mapping | list) or got is None else f" (got {got!r})"
        if got_text and _secret(parts):
            got_text = " (value hidden: it is a secret)"
        elif got_text and parts[:2] == ("store", "url"):
            got_text = f" (got {mask_url(str(got))!r})"
        if err["type"] == "missing":
            got_text = ""
        if msg.startswith(f"{loc}."):  # names its own paths (alerting.rules[3].critical: ...)
            lines.append(msg)
            continue
        lines.append(f"{loc}: {msg}{got_text}")
    head = f"invalid configuration in {source}" if source else "invalid configuration"
    return head + ":\n  " + "\n  ".join(lines)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    from inferwatch.models._loader import is_registry_uri

    for m in settings.models:
        for attr in ("path", "schema_path", "reference"):
            value = getattr(m, attr)
            if attr == "path" and is_registry_uri(value):
                continue  # models:/name/version names a registered model, not a file
            if value is not None and not value.is_absolute():
                setattr(m, attr, (base / value).resolve())
        for p in m.previous:
            if not p.path.is_absolute() and not is_registry_uri(p.path):
                p.path = (base / p.path).resolve()
    url = settings.store.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url.removeprefix("sqlite:///")
        if rel and rel != ":memory:" and not rel.startswith("/"):
            settings.store.url = f"sqlite:///{(base / rel).resolve()}"
    return settings


def load_settings(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read settings from ``path`` (YAML), the environment and ``overrides`` (CLI flags).

    Relative paths in the YAML (models, references, a SQLite file) are taken from the
    YAML file's folder; without a file, from the working directory.
    Raises :class:`ConfigError` naming each bad key.
    """
    yaml_path = Path(path) if path is not None else None
    if yaml_path is not None and not yaml_path.is_file():
        raise ConfigError(f"configuration file {yaml_path} does not exist")
    token = _yaml_file.set(yaml_path)
    try:
        settings = Settings(**dict(overrides or {}))
    except pydantic.ValidationError as exc:
        raise ConfigError(format_errors(exc, str(yaml_path) if yaml_path else None)) from None
    except Exception as exc:  # yaml.YAMLError, SettingsError on a bad INFERWATCH_ value
        where = f" in {yaml_path}" if yaml_path else ""
        raise ConfigError(f"cannot read the configuration{where}: {_reading_error(exc)}") from None
    finally:
        _yaml_file.reset(token)
    base = yaml_path.parent.resolve() if yaml_path else Path.cwd()
    return _resolve_paths(settings, base)


def _reading_error(exc: Exception) -> str:
    """What went wrong reading the file, without quoting its lines (they may hold keys)."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"invalid YAML{where}: {exc.problem or exc.context or 'cannot parse'}"
    return str(exc)


def check_settings(settings: Settings, *, load_models: bool = True) -> list[str]:
    """What ``serve`` would refuse at start, as ``key: problem`` lines (empty when fine).

    ``load_settings`` already checked every value's type and range; this reads what the
    values point at, the way ``serve`` does: the bind address against ``auth.keys``,
    the PostgreSQL driver, each model file (a file, not a folder; its SHA-256 when
    ``trusted_model_hashes`` is set), its schema file (loaded and validated: ranges,
    kinds, min <= max), its reference (read; at most the first 10,000 rows, so a
    problem further in is found by ``serve`` alone) and, with ``load_models``, the model
    itself (loaded, and asked to score five reference rows in the schema's columns).
    Nothing is written and no database is contacted (but an mlflow model's
    ``models:/`` registry, which is asked for the model and its files when models load).
    """
    from inferwatch.errors import InferwatchError
    from inferwatch.models._loader import check_model_file

    problems: list[str] = []
    if not settings.auth.enabled and not is_loopback(settings.server.host):
        problems.append(
            f"server.host: refusing to bind {settings.server.host}: access control is off "
            "(no API keys configured); configure auth.keys or bind 127.0.0.1"
        )
    scheme = settings.store.url.split("://", 1)[0].lower()
    if scheme.startswith("postgres"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None:
            problems.append(
                "store.url: the PostgreSQL driver is not installed; "
                "pip install 'inferwatch[postgres]'"
            )
    for i, m in enumerate(settings.models):
        where = f"models[{i}]"
        try:
            check_model_file(m.path, m.flavor, m.trusted_model_hashes)
        except InferwatchError as exc:
            problems.append(f"{where}.path: {exc}")
            model_ok = False
        else:
            model_ok = True
        for j, p in enumerate(m.previous):
            try:
                check_model_file(p.path, p.flavor or m.flavor, m.trusted_model_hashes)
            except InferwatchError as exc:
                problems.append(f"{where}.previous[{j}].path: {exc}")
        problems += _check_model_data(m, where, load_models and model_ok)
    return problems


def _check_model_data(m: ModelSettings, where: str, load_model: bool) -> list[str]:
    """The schema, reference and (with ``load_model``) model checks of one model."""
    from inferwatch.errors import InferwatchError
    from inferwatch.io import load_schema, read_columns
    from inferwatch.schema import infer_schema

    problems: list[str] = []
    for key, path in (("schema", m.schema_path), ("reference", m.reference)):
        if path is not None and path.is_dir():
            problems.append(f"{where}.{key}: {path} is a folder, not a file")
        elif path is not None and not path.is_file():
            problems.append(f"{where}.{key}: file {path} does not exist")
    if problems:
        return problems
    schema = columns = None
    if m.schema_path is not None:
        try:
            schema = load_schema(m.schema_path).with_task(m.task)
        except InferwatchError as exc:
            problems.append(f"{where}.schema: {exc}")
    if m.reference is not None:
        try:
            columns = read_columns(m.reference, limit=10_000)
        except InferwatchError as exc:
            problems.append(f"{where}.reference: {exc}")
    if schema is None and columns is not None and m.schema_path is None:
        try:
            schema = infer_schema(columns, target=m.target, prediction=m.prediction, task=m.task)
        except InferwatchError as exc:
            problems.append(f"{where}.reference: {exc}")
    if problems or schema is None or not load_model:
        return problems
    from inferwatch.models import load_model as load
    from inferwatch.models._loader import check_model_file

    rows: list[dict[str, Any]] | None = None
    if columns is not None:
        missing = [name for name in schema.names if name not in columns]
        if missing:
            return [f"{where}.reference: has no column {', '.join(map(repr, missing[:5]))}"]
        n = min(5, len(next(iter(columns.values()), [])))
        rows = [{name: columns[name][r].item() if hasattr(columns[name][r], "item")
                 else columns[name][r] for name in schema.names} for r in range(n)]  # fmt: skip
    # the live version and each previous one: serve loads them all at start
    for j, version in enumerate(m.versions()):
        key = f"{where}.path" if j == 0 else f"{where}.previous[{j - 1}].path"
        try:
            check_model_file(version.path, version.flavor, m.trusted_model_hashes)
        except InferwatchError:
            continue  # check_settings reported it
        try:
            adapter = load(
                version.path,
                version.flavor,
                feature_names=schema.names,
                trusted_hashes=m.trusted_model_hashes,
                classes=m.classes,
                tracking_uri=m.tracking_uri,
            )
        except InferwatchError as exc:
            problems.append(f"{key}: {exc}")
            continue
        if rows is None:
            continue
        try:
            adapter.predict(rows)
        except Exception as exc:  # the model's own error, whatever its type
            problems.append(
                f"{key.removesuffix('.path')}: the model cannot predict the reference's rows "
                f"with this schema's features ({type(exc).__name__}: {str(exc).strip()[:300]})"
            )
    return problems


def mask_url(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
