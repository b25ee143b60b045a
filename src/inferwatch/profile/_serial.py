"""Checked reading of serialised profiles, shared by every profile in this package.

Profiles travel through the store and between replicas as plain dicts; a dict that was
edited by hand or written by another version must fail with a message naming the key,
never build a profile whose counts do not add up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["FORMAT", "check_header", "read_float", "read_int", "read_list"]

#: the serialisation format every profile writes (``"format"`` in its dict)
FORMAT: Final = 1


def check_header(data: Mapping[str, Any], kind: str) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"{kind} profile: expected a mapping, got {type(data).__name__}")
    if data.get("kind") != kind:
        raise ValueError(f"{kind} profile: 'kind' is {data.get('kind')!r}, expected {kind!r}")
    if data.get("format") != FORMAT:
        raise ValueError(f"{kind} profile: format {data.get('format')!r} is not supported")


def read_int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"profile: {key!r} must be an integer >= 0, got {value!r}")
    return value


def read_float(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"profile: {key!r} must be a number, got {value!r}")
    return float(value)


def read_list(data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key)
    if not isinstance(value, list | tuple):
        raise ValueError(f"profile: {key!r} must be a list, got {type(value).__name__}")
    return value
