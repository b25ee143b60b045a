"""Settings become DriftOptions in one place: DriftSettings.to_options (from_settings)."""

from __future__ import annotations

from inferwatch.config import DriftSettings
from inferwatch.evaluate import DriftOptions


def test_settings_and_flags_give_the_same_options() -> None:
    keys = {
        "drift_share": 0.3,
        "tests": {"age": "psi"},
        "thresholds": {"age": 0.2},
        "correction": "bonferroni",
    }
    from_settings = DriftSettings(**keys, window_seconds=60).to_options(multivariate=True)
    from_flags = DriftOptions.from_settings(keys, multivariate=True)
    assert from_settings == from_flags
    assert (from_settings.drift_share, from_settings.correction) == (0.3, "bonferroni")
    assert dict(from_settings.tests) == {"age": "psi"}
    assert dict(from_settings.thresholds) == {"age": 0.2} and from_settings.multivariate


def test_absent_keys_keep_the_defaults() -> None:
    assert DriftOptions.from_settings({}) == DriftOptions()
    assert DriftSettings().to_options() == DriftOptions()
