"""Silences: matchers (=, !=, =~, !~, anchored), pending/active/expired by time, expire early."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from inferwatch.alerting import Matcher, Silences
from tests.alerting._helpers import T0


@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ("model=iris", {"model": "iris"}, True),
        ("model=iris", {"model": "iris2"}, False),
        ("model!=iris", {"model": "wine"}, True),
        ("model!=iris", {"model": "iris"}, False),
        ('model=~"iris|wine"', {"model": "wine"}, True),
        ("model=~iris|wine", {"model": "digits"}, False),
        ("model=~iri", {"model": "iris"}, False),  # anchored: no partial match
        ("model!~ir.*", {"model": "wine"}, True),
        ("model!~ir.*", {"model": "iris"}, False),
        ("feature=", {"model": "iris"}, True),  # a missing label reads as ""
        ("feature!=", {"model": "iris"}, False),
    ],
)
def test_matchers(text: str, labels: dict[str, str], hit: bool) -> None:
    m = Matcher.parse(text)
    assert m.matches(labels) is hit
    # cross-check the regex operators against re.fullmatch (Alertmanager anchors both ends)
    if m.op in ("=~", "!~"):
        full = re.fullmatch(m.value, labels.get(m.name, "")) is not None
        assert hit is (full == (m.op == "=~"))


@pytest.mark.parametrize("text", ["model", "=iris", "model~iris", "model=~(", "1bad=x"])
def test_bad_matchers_are_clear_errors(text: str) -> None:
    with pytest.raises(ValueError, match="matcher"):
        Matcher.parse(text)


def test_silence_lifecycle_by_time_and_early_expiry() -> None:
    silences = Silences()
    s = silences.add(
        ["alertname=AccuracyLow", "model=~ir.*"],
        T0 + timedelta(minutes=1),
        T0 + timedelta(hours=1),
        author="ana",
        comment="retraining",
    )
    labels = {"alertname": "AccuracyLow", "model": "iris", "severity": "critical"}
    assert s.state(T0) == "pending" and silences.silenced_by(labels, T0) == ()
    at = T0 + timedelta(minutes=1)
    assert silences.silenced_by(labels, at) == (s.id,)
    assert silences.silenced_by({**labels, "model": "wine"}, at) == ()
    assert silences.silenced_by(labels, T0 + timedelta(hours=1)) == ()  # expired by time
    assert [x.id for x in silences.list(T0 + timedelta(hours=2), "expired")] == [s.id]
    # expire early: ends now, the author and comment stay for the record
    now = T0 + timedelta(minutes=10)
    ended = silences.expire(s.id, now)
    assert ended.ends_at == now and ended.author == "ana" and ended.state(now) == "expired"
    assert silences.silenced_by(labels, now) == ()
    assert silences.list(now, "active") == []


def test_expiring_a_pending_silence_means_it_never_mutes() -> None:
    silences = Silences()
    s = silences.add(["model=iris"], T0 + timedelta(hours=1), T0 + timedelta(hours=2), "ana")
    silences.expire(s.id, T0)
    assert silences.silenced_by({"model": "iris"}, T0 + timedelta(minutes=90)) == ()


def test_bad_silences() -> None:
    silences = Silences()
    with pytest.raises(ValueError, match="end after"):
        silences.add(["model=iris"], T0, T0, "ana")
    with pytest.raises(ValueError, match="author"):
        silences.add(["model=iris"], T0, T0 + timedelta(hours=1), " ")
    with pytest.raises(ValueError, match="at least one matcher"):
        silences.add([], T0, T0 + timedelta(hours=1), "ana")
    with pytest.raises(KeyError):
        silences.expire("nope", T0)


def test_expired_silences_are_forgotten_after_the_retention() -> None:
    silences = Silences(retention=timedelta(days=5))
    s = silences.add(["model=iris"], T0, T0 + timedelta(hours=1), "ana")
    keep = silences.add(["model=wine"], T0, T0 + timedelta(days=30), "ana")
    assert silences.purge(T0 + timedelta(days=5)) == 0  # expired 4 d 23 h ago: still listed
    assert silences.purge(T0 + timedelta(days=5, hours=1)) == 1
    assert silences.get(s.id) is None and silences.get(keep.id) is keep
