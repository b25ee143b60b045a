"""Saved dataset profiles: what ``inferwatch profile`` and :mod:`inferwatch.spark` write and
``inferwatch report --reference-profile/--current-profile`` reads.

A profile file is JSON: the :class:`~inferwatch.profile.FrameProfile` with its reference
bins (``profile``), and for a reference the number of distinct finite values of each
numeric feature (``n_unique``), which the default test rule reads (a numeric column with
few values is judged as categories) and which a merged profile cannot recover from its
bins.  A current profile is built on its reference's bins (same fingerprint), so the two
can be compared bin by bin; a profile of many parts (partitions, files, days) is the
merge of the parts' profiles, exactly.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from inferwatch._version import __version__
from inferwatch.errors import InputFileError
from inferwatch.profile import FrameProfile

if TYPE_CHECKING:
    from inferwatch.schema import Schema

__all__ = [
    "PROFILE_FILE_FORMAT",
    "SavedProfile",
    "load_profile",
    "n_unique_finite",
    "profile_columns",
    "save_profile",
]

#: the ``format`` of a profile file
PROFILE_FILE_FORMAT: Final = 1
_KIND: Final = "inferwatch-profile"


@dataclass(frozen=True)
class SavedProfile:
    """A profile as saved: the profile, the reference's distinct-value counts (empty for a
    current profile) and where it came from (``source``: a file, a DataFrame)."""

    profile: FrameProfile
    n_unique: Mapping[str, int] = field(default_factory=dict)
    source: str = ""


def save_profile(saved: SavedProfile, path: str | Path) -> Path:
    """Write ``saved`` as JSON to ``path`` (atomically: a temporary file renamed)."""
    p = Path(path)
    data: dict[str, Any] = {
        "kind": _KIND,
        "format": PROFILE_FILE_FORMAT,
        "inferwatch_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": saved.source,
        "n_rows": saved.profile.n_rows,
        "n_unique": dict(saved.n_unique),
        "profile": saved.profile.to_dict(include_bins=True),
    }
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def load_profile(path: str | Path) -> SavedProfile:
    """Read a profile file; :class:`InputFileError` naming the file and what is wrong."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"{p}: no such profile file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"{p}: not a profile file ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != _KIND:
        raise InputFileError(f"{p}: not a profile file (write one with `inferwatch profile`)")
    if data.get("format") != PROFILE_FILE_FORMAT:
        raise InputFileError(f"{p}: profile file format {data.get('format')!r} is not supported")
    try:
        profile = FrameProfile.from_dict(data["profile"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputFileError(f"{p}: malformed profile: {exc}") from None
    n_unique = data.get("n_unique") or {}
    if not isinstance(n_unique, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in n_unique.values()
    ):
        raise InputFileError(f"{p}: 'n_unique' must map features to counts >= 0")
    return SavedProfile(
        profile, {str(k): v for k, v in n_unique.items()}, str(data.get("source", ""))
    )


def n_unique_finite(values: Any) -> int:
    """Distinct finite values of a numeric column (what the default test rule reads)."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    return int(np.unique(arr[np.isfinite(arr)]).size)


def profile_columns(
    columns: Mapping[str, Any],
    *,
    reference: SavedProfile | None = None,
    schema: Schema | None = None,
    target: str | None = None,
    prediction: str | None = None,
    source: str = "",
) -> SavedProfile:
    """Profile numpy ``columns`` in one process.

    With a ``reference`` profile, on its bins (a current profile).  Without, the columns
    are a reference: the bins are fitted on them (the ``schema`` given, else inferred with
    ``target`` and ``prediction`` left out of the features) and the distinct values of
    each numeric feature are counted.  :func:`inferwatch.spark.profile_dataframe` builds
    the same profile from a Spark DataFrame, partition by partition.
    """
    from inferwatch.profile import fit_bins, profile
    from inferwatch.schema import infer_schema

    if reference is not None:
        return SavedProfile(profile(columns, reference.profile.bins), {}, source)
    if schema is None:
        schema = infer_schema(columns, target=target, prediction=prediction)
    bins = fit_bins(columns, schema)
    n_unique = {
        f.name: n_unique_finite(columns[f.name])
        for f in schema.features
        if f.kind == "numeric" and f.name in columns
    }
    return SavedProfile(profile(columns, bins), n_unique, source)
