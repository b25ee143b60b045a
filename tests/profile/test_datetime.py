"""DatetimeProfile: range and freshness from datetime64 and object columns, edge cases."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from inferwatch.profile import DatetimeProfile


def test_datetime64_columns_of_any_unit(rng: np.random.Generator) -> None:
    base = np.datetime64("2024-03-01T00:00:00", "ns")
    stamps = base + rng.integers(0, 10**15, 1000).astype("timedelta64[ns]")
    stamps[::50] = np.datetime64("NaT")
    prof = DatetimeProfile().update_many(stamps).update_many(stamps[:10].astype("datetime64[s]"))
    valid = stamps[~np.isnat(stamps)]
    assert (prof.count, prof.missing, prof.invalid) == (1010, 20 + 1, 0)
    assert prof.min == valid.min() and prof.max == valid.max() == prof.newest


def test_object_values_naive_aware_dates_and_junk() -> None:
    values = np.empty(7, dtype=object)
    values[:] = [
        datetime(2024, 1, 1, 12, 0),  # naive: taken as UTC
        datetime(2024, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=1))),  # 13:00 UTC
        date(2023, 12, 31),
        np.datetime64("2024-01-02"),
        None,
        "2024-01-01",
        5,
    ]
    prof = DatetimeProfile().update_many(values)
    assert (prof.count, prof.missing, prof.invalid) == (7, 1, 2)
    assert prof.min == np.datetime64("2023-12-31T00:00", "ns")
    assert prof.max == np.datetime64("2024-01-02T00:00", "ns")
    assert prof.age_seconds(datetime(2024, 1, 2, 0, 1, tzinfo=UTC)) == 60.0
    assert prof.age_seconds(np.datetime64("2024-01-03")) == 86_400.0


def test_empty_and_missing() -> None:
    prof = DatetimeProfile().update_many(np.array([], dtype="datetime64[ns]"))
    assert prof.min is None and prof.max is None
    assert math.isnan(prof.age_seconds(np.datetime64("2024-01-01")))
    prof.add_missing(2).update(None)
    assert (prof.count, prof.missing) == (3, 3)
    with pytest.raises(ValueError, match=">= 0"):
        prof.add_missing(-1)
    with pytest.raises(ValueError, match="now"):
        prof.age_seconds(None)  # type: ignore[arg-type]


def test_merge_and_round_trip() -> None:
    a = DatetimeProfile().update_many(np.array(["2024-01-05", "NaT"], dtype="datetime64[ns]"))
    b = DatetimeProfile().update_many(np.array(["2023-06-01", "2024-02-01"], dtype="datetime64[D]"))
    both = DatetimeProfile().update_many(
        np.array(["2024-01-05", "NaT", "2023-06-01", "2024-02-01"], dtype="datetime64[ns]")
    )
    assert a + b == both == b + a and a + DatetimeProfile() == a == DatetimeProfile() + a
    assert DatetimeProfile.from_dict(json.loads(json.dumps(both.to_dict()))) == both
    assert DatetimeProfile.from_dict(DatetimeProfile().to_dict()) == DatetimeProfile()
    with pytest.raises(ValueError, match="add up"):
        DatetimeProfile.from_dict({**both.to_dict(), "n_valid": 9})
    with pytest.raises(TypeError):
        a += 1  # type: ignore[arg-type]
    assert both.get().max == np.datetime64("2024-02-01", "ns") and "DatetimeProfile" in repr(both)
