"""A fake clock and outcome builders shared by the alerting tests (no sleeps anywhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inferwatch.alerting import RuleOutcome, Severity

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def outcome(
    severity: Severity | None,
    *,
    rule: str = "AccuracyLow",
    model: str = "iris",
    value: float = 0.5,
    for_seconds: float = 60.0,
    **labels: str,
) -> RuleOutcome:
    return RuleOutcome(
        rule=rule,
        labels={"model": model, **labels},
        severity=severity,
        value=value,
        for_seconds=for_seconds,
        annotations={"summary": f"{rule} on {model}: {value}"},
    )
