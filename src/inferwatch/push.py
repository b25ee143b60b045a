"""Push a training or batch job's scores and run time to a Prometheus Pushgateway.

A job that ends before Prometheus could scrape it pushes its figures instead: the
Pushgateway keeps the last push of each group (``job`` plus the grouping key) for
Prometheus to scrape.  The gauges are defined in :func:`inferwatch.metrics.job_registry`:
``inferwatch_job_metric{name}`` per score, ``inferwatch_job_duration_seconds`` and
``inferwatch_job_last_success_timestamp_seconds`` (or ``..._last_failure_...``).

The HTTP calls are prometheus_client's ``push_to_gateway`` (PUT: the group's metrics
are replaced), ``pushadd_to_gateway`` (POST: only the families pushed are replaced; a
failure push uses it, so the last success timestamp survives a failed run) and
``delete_from_gateway``.  In training code::

    from inferwatch.push import push_job, timed_job

    push_job("http://127.0.0.1:9091", "train_churn", {"auc": 0.91}, duration_seconds=42.0)

    group = {"model": "churn"}
    with timed_job("http://127.0.0.1:9091", "train_churn", grouping_key=group) as scores:
        scores["auc"] = train()  # pushed with the run time on exit; a failure on exception
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Literal
from urllib.parse import urlsplit

from inferwatch.errors import InferwatchError
from inferwatch.metrics import MAX_JOB_METRICS, job_registry

__all__ = ["PushError", "check_gateway", "delete_job", "metric_name", "push_job", "timed_job"]

_INVALID = re.compile(r"[^A-Za-z0-9_]+")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_NAME = 100


class PushError(InferwatchError):
    """The Pushgateway could not be reached or refused the push."""


def metric_name(raw: str) -> str:
    """A score's ``name`` label: runs of characters other than letters, digits and ``_``
    become one ``_``, leading and trailing ``_`` go (``"val/F1 score"`` → ``"val_F1_score"``).

    Raises ValueError for a name with nothing left or longer than 100 characters.
    """
    name = _INVALID.sub("_", raw).strip("_")
    if not name:
        raise ValueError(f"metric name {raw!r} has no letters or digits")
    if len(name) > _MAX_NAME:
        raise ValueError(f"metric name {raw[:40]!r}... is longer than {_MAX_NAME} characters")
    return name


def _scores(scores: Mapping[str, float]) -> dict[str, float]:
    """Sanitised names → finite floats; two names that sanitise alike are refused."""
    if len(scores) > MAX_JOB_METRICS:
        raise ValueError(f"at most {MAX_JOB_METRICS} metrics per push, got {len(scores)}")
    out: dict[str, float] = {}
    for raw, value in scores.items():
        name = metric_name(raw)
        if name in out:
            raise ValueError(f"metric names {raw!r} and another both become {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"metric {raw!r}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"metric {raw!r}: expected a finite number, got {value!r}")
        out[name] = float(value)
    return out


def _grouping(grouping_key: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (grouping_key or {}).items():
        if not _LABEL_NAME.match(key) or key.startswith("__") or key == "job":
            raise ValueError(
                f"grouping key {key!r} is not a label name (letters, digits, '_'; "
                "not 'job', not starting with '__')"
            )
        if not str(value):
            raise ValueError(f"grouping key {key!r} has an empty value")
        out[key] = str(value)
    return out


def check_gateway(url: str) -> str:
    """``url`` if it is an http(s) address with a host (``host:port`` gets ``http://``)."""
    example = "expected an address like http://127.0.0.1:9091"
    full = url if "://" in url else f"http://{url}"  # prometheus_client adds http:// too
    try:
        parts = urlsplit(full)
        parts.port  # noqa: B018  (parses the port: ValueError when it is no number)
    except ValueError:
        raise ValueError(f"gateway {url!r} is not a URL; {example}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() or ord(c) < 32 for c in full)
    ):
        raise ValueError(f"gateway {url!r} is not a URL; {example}")
    return full


def _check_job(job: str) -> None:
    if not job or len(job) > 200 or any(c.isspace() or ord(c) < 32 for c in job):
        raise ValueError(f"job {job!r} must be 1 to 200 characters without spaces")


def push_job(
    gateway: str,
    job: str,
    scores: Mapping[str, float] | None = None,
    *,
    duration_seconds: float | None = None,
    grouping_key: Mapping[str, str] | None = None,
    succeeded: bool = True,
    mode: Literal["replace", "add"] = "replace",
    timeout: float = 10.0,
) -> None:
    """Push one run's scores and duration; raise PushError when the gateway fails.

    ``mode="replace"`` (PUT) replaces everything the group held; ``"add"`` (POST) only
    the families pushed.  A failed run (``succeeded=False``) is always pushed with POST
    so the group's last success timestamp stays.  Bad arguments raise ValueError
    before anything is sent.
    """
    from prometheus_client import push_to_gateway, pushadd_to_gateway

    url = check_gateway(gateway)
    _check_job(job)
    values = _scores(scores or {})
    group = _grouping(grouping_key)
    if duration_seconds is not None and not (
        math.isfinite(duration_seconds) and duration_seconds >= 0
    ):
        raise ValueError(f"duration must be a finite number >= 0, got {duration_seconds!r}")
    registry = job_registry(
        values, duration_seconds=duration_seconds, succeeded=succeeded, timestamp=time.time()
    )
    send = push_to_gateway if mode == "replace" and succeeded else pushadd_to_gateway
    try:
        send(url, job=job, registry=registry, grouping_key=group, timeout=timeout)
    except (OSError, ValueError) as exc:  # ValueError: http.client.InvalidURL and kin
        raise PushError(f"cannot push to the Pushgateway at {gateway}: {exc}") from None


def delete_job(
    gateway: str,
    job: str,
    *,
    grouping_key: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Delete a group's metrics from the gateway (raise PushError when it fails)."""
    from prometheus_client import delete_from_gateway

    url = check_gateway(gateway)
    _check_job(job)
    group = _grouping(grouping_key)
    try:
        delete_from_gateway(url, job=job, grouping_key=group, timeout=timeout)
    except (OSError, ValueError) as exc:
        raise PushError(f"cannot remove the group at the Pushgateway {gateway}: {exc}") from None


@contextmanager
def timed_job(
    gateway: str,
    job: str,
    *,
    grouping_key: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Iterator[dict[str, float]]:
    """Time the block and push on exit: the scores put in the yielded dict with the run
    time on success; on an exception, the failure timestamp and run time (then the
    exception goes on).  A push that fails raises PushError only on success: a training
    error is never hidden behind an unreachable gateway."""
    scores: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield scores
    except BaseException:
        with suppress(PushError, ValueError):
            push_job(
                gateway, job, scores, duration_seconds=time.perf_counter() - start,
                grouping_key=grouping_key, succeeded=False, timeout=timeout,
            )  # fmt: skip
        raise
    push_job(
        gateway, job, scores, duration_seconds=time.perf_counter() - start,
        grouping_key=grouping_key, timeout=timeout,
    )  # fmt: skip
