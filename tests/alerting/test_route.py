"""Routing: Alertmanager's first-match-wins semantics with ``continue``, the default
receiver, and ``alerting.route``/``alerting.receivers`` in the config checked with key
paths; the Dispatcher delivers by the config's route."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pydantic
import pytest

from inferwatch.alerting import AlertEngine, ChildRoute, Dispatcher, Matcher, Route
from inferwatch.config import Settings, format_errors, load_settings
from inferwatch.observation import Alert
from tests.alerting._helpers import FakeClock, outcome

RECEIVERS = [
    {"name": "chat", "type": "slack", "url_env": "SLACK_URL"},
    {"name": "pager", "type": "pagerduty", "routing_key_file": "/run/secrets/pd"},
    {"name": "audit", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
]


def _route(*children: tuple[list[str], str, bool], default: str | None = "chat") -> Route:
    return Route.build(default, list(children))


def test_first_matching_child_wins() -> None:
    route = _route(
        (["severity=critical"], "pager", False),
        (["model=iris"], "audit", False),
    )
    # critical on iris matches both children; the first one stops the search
    assert route.receivers_for({"severity": "critical", "model": "iris"}) == ["pager"]
    assert route.receivers_for({"severity": "warning", "model": "iris"}) == ["audit"]


def test_continue_lets_later_children_match_too() -> None:
    route = _route(
        (["severity=critical"], "pager", True),
        (["model=~iris|wine"], "audit", False),
        (["severity=critical"], "chat", False),  # never reached for iris: audit stopped it
    )
    assert route.receivers_for({"severity": "critical", "model": "iris"}) == ["pager", "audit"]
    assert route.receivers_for({"severity": "critical", "model": "churn"}) == ["pager", "chat"]


def test_a_matching_continue_child_still_replaces_the_default() -> None:
    # as in Alertmanager: the parent only takes alerts that no child matched
    route = _route((["severity=critical"], "pager", True))
    assert route.receivers_for({"severity": "critical"}) == ["pager"]
    assert route.receivers_for({"severity": "warning"}) == ["chat"]


def test_all_matchers_must_hold_and_missing_labels_read_as_empty() -> None:
    route = _route((["severity=critical", "team!=ml"], "pager", False))
    assert route.receivers_for({"severity": "critical"}) == ["pager"]  # team is ""
    assert route.receivers_for({"severity": "critical", "team": "ml"}) == ["chat"]


def test_no_default_receiver_routes_nowhere() -> None:
    assert Route(None).receivers_for({"severity": "critical"}) == []
    with pytest.raises(ValueError, match="default receiver"):
        Route(None, (ChildRoute((Matcher.parse("a=b"),), "pager"),))
    with pytest.raises(ValueError, match="at least one matcher"):
        ChildRoute((), "pager")


def test_config_builds_the_route_and_the_dispatcher_timers() -> None:
    settings = Settings(
        alerting={
            "receivers": RECEIVERS,
            "route": {
                "group_by": ["alertname"],
                "group_wait": "10s",
                "group_interval": 120,
                "repeat_interval": "1h30m",
                "routes": [
                    {"matchers": ["severity=critical"], "receiver": "pager", "continue": True},
                    {"matchers": ['model=~"iris|wine"'], "receiver": "audit"},
                ],
            },
        }
    )
    route = settings.alerting.to_route()
    assert route.receiver == "chat"  # null: the first configured receiver
    assert route.group_by == ("alertname",)
    assert (route.group_wait, route.group_interval, route.repeat_interval) == (
        timedelta(seconds=10),
        timedelta(minutes=2),
        timedelta(hours=1, minutes=30),
    )
    assert route.receivers_for({"severity": "critical", "model": "wine"}) == ["pager", "audit"]
    assert route.receivers_for({"severity": "warning", "model": "churn"}) == ["chat"]
    assert route.receivers == ["chat", "pager", "audit"]


def test_no_receivers_means_log_only() -> None:
    assert Settings().alerting.to_route().receivers_for({"severity": "critical"}) == []


def _errors(alerting: dict[str, object]) -> str:
    with pytest.raises(pydantic.ValidationError) as info:
        Settings(alerting=alerting)
    return format_errors(info.value)


def test_route_to_an_unknown_receiver_names_the_key() -> None:
    text = _errors(
        {
            "receivers": RECEIVERS,
            "route": {"receiver": "oncall", "routes": [{"matchers": ["a=b"], "receiver": "sms"}]},
        }
    )
    assert "alerting.route.receiver: no receiver named 'oncall'" in text
    assert "alerting.route.routes[0].receiver: no receiver named 'sms'" in text
    assert "configured: chat, pager, audit" in text


def test_bad_matcher_and_duration_name_the_key() -> None:
    text = _errors({"route": {"routes": [{"matchers": ["severity critical"], "receiver": "x"}]}})
    assert "alerting.route.routes[0].matchers: bad matcher 'severity critical'" in text
    text = _errors({"route": {"group_wait": "5 minutes"}})
    assert "alerting.route.group_wait: '5 minutes' is not a duration" in text
    text = _errors({"evaluation_interval": "1x"})
    assert "alerting.evaluation_interval:" in text


def test_bad_receivers_name_the_entry_and_key() -> None:
    text = _errors({"receivers": [{"name": "a", "type": "webhok", "url": "http://x"}]})
    assert "alerting.receivers[0].type:" in text
    text = _errors({"receivers": [{"name": "a", "type": "slack"}]})
    assert "alerting.receivers[0]: one of url, url_file or url_env is required" in text
    text = _errors({"receivers": [{"name": "a", "type": "email", "to": ["x@y"], "from": "me@y"}]})
    assert "alerting.receivers[0].smarthost: Field required" in text
    text = _errors({"receivers": [RECEIVERS[0], {**RECEIVERS[2], "name": "chat"}]})
    assert "alerting.receivers[1].name: 'chat' is already the name of alerting.receivers[0]" in (
        text
    )


def test_inline_secrets_are_masked_in_the_settings_dump() -> None:
    settings = Settings(
        alerting={"receivers": [{"name": "hook", "type": "webhook", "url": "http://h/s3cr3t"}]}
    )
    dumped = str(settings.masked())
    assert "s3cr3t" not in dumped and "s3cr3t" not in repr(settings)
    # the secret itself is still there for build_notifier
    assert settings.alerting.receivers[0].url.get_secret_value() == "http://h/s3cr3t"


def test_routing_reads_from_the_yaml_file(tmp_path: Path) -> None:
    config = tmp_path / "inferwatch.yaml"
    config.write_text(
        "alerting:\n"
        "  evaluation_interval: 30s\n"
        "  receivers:\n"
        "    - {name: chat, type: slack, url_env: SLACK_URL}\n"
        "    - {name: pager, type: pagerduty, routing_key_env: PD_KEY}\n"
        "  route:\n"
        "    receiver: chat\n"
        "    routes:\n"
        "      - matchers: [severity=critical]\n"
        "        receiver: pager\n"
        "        continue: true\n"
    )
    settings = load_settings(config)
    assert settings.alerting.evaluation_interval == 30.0
    child = settings.alerting.route.routes[0]
    assert child.continue_ is True
    assert settings.alerting.to_route().receivers_for({"severity": "critical"}) == ["pager"]


class _Recorder:
    """A notifier that records which receiver got which alerts."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []

    def send(self, receiver: str, group_key: str, alerts: Sequence[Alert]) -> None:
        self.sent.append((receiver, sorted(f"{a.labels['model']}:{a.severity}" for a in alerts)))


def test_the_dispatcher_delivers_by_the_configured_route() -> None:
    settings = Settings(
        alerting={
            "receivers": RECEIVERS,
            "route": {
                "group_wait": "10s",
                "routes": [
                    {"matchers": ["severity=critical"], "receiver": "pager", "continue": True},
                    {"matchers": ["model=wine"], "receiver": "audit"},
                ],
            },
        }
    )
    route = settings.alerting.to_route()
    clock = FakeClock()
    engine = AlertEngine(clock)
    rx = _Recorder()
    dispatcher = Dispatcher(
        engine,
        rx,
        receivers=route.receivers,
        route=route.receivers_for,
        group_by=route.group_by,
        group_wait=route.group_wait,
        group_interval=route.group_interval,
        repeat_interval=route.repeat_interval,
    )
    outcomes = [
        outcome("critical", rule="LatencyHigh", model="iris", for_seconds=0),
        outcome("warning", rule="DriftHigh", model="wine", for_seconds=0),
        outcome("warning", rule="DriftHigh", model="churn", for_seconds=0),
    ]
    for _ in range(12):
        engine.evaluate(outcomes, clock.now)
        dispatcher.tick(clock.now)
        clock.advance(1)
    assert sorted(rx.sent) == [
        ("audit", ["wine:warning"]),
        ("chat", ["churn:warning"]),
        ("pager", ["iris:critical"]),
    ]
