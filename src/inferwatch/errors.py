"""The inferwatch error tree, rooted in built-in types so callers can catch what they expect.

::

    InferwatchError                       base of everything we raise on purpose
    ├── ConfigError(ValueError)           a configuration value is missing or invalid
    ├── SchemaError(ValueError)           a schema cannot be inferred, loaded or applied
    ├── ValidationError(ValueError)       a request or a batch does not match the schema
    ├── ModelError(RuntimeError)          a model cannot be loaded or failed to predict
    ├── StoreError(RuntimeError)          the store cannot be reached or refused a write
    │   └── StoreRejectedError            the store refused the rows themselves (no retry)
    ├── InputFileError(ValueError)        a data file cannot be read (format, columns, encoding)
    ├── NotifyError(RuntimeError)         one attempt to deliver alerts to a receiver failed
    └── stats.DriftInputError(ValueError) a drift test got unusable input
        └── stats.EmptySampleError        an empty reference or current sample

    stats.UnknownTestError(KeyError)      no drift test by that name (lists the known ones)
    stats.NoDefaultTestError(LookupError) no default test for a kind
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_ECHO",
    "ConfigError",
    "FieldError",
    "InferwatchError",
    "InputFileError",
    "ModelError",
    "NotifyError",
    "SchemaError",
    "StoreError",
    "StoreRejectedError",
    "ValidationError",
    "echo",
]

#: The most characters of a client-sent name or value that an error message repeats.
MAX_ECHO = 100


def echo(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` cut to ``limit`` characters for an error message, saying how long it was.

    A client controls the names and values it sends; repeating them whole let a 500 kB
    feature name come back as a 1.5 MB error (it appears in the field and the message,
    JSON-escaped).  Lone surrogates are written as ``\\udXXX`` escapes, so the message
    can always be encoded.
    """
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class InferwatchError(Exception):
    """Base class of every error inferwatch raises on purpose."""


class ConfigError(InferwatchError, ValueError):
    """A configuration value is missing or invalid; the message names the key path."""


class SchemaError(InferwatchError, ValueError):
    """A schema cannot be inferred, loaded or applied."""


class InputFileError(InferwatchError, ValueError):
    """A data file cannot be read: unknown format, missing columns or bad encoding."""


class ModelError(InferwatchError, RuntimeError):
    """A model cannot be loaded or failed while predicting."""


class NotifyError(InferwatchError, RuntimeError):
    """One attempt to deliver alerts to a receiver failed (refused, unreachable, timed out).

    A receiver makes exactly one attempt per ``send``; retrying with backoff is the
    alerting engine's job, so the engine catches this, logs it and tries again later.
    ``receiver`` names the receiver; ``retryable`` is False where the same request
    cannot succeed later (a 4xx other than 408/429: a bad URL, a revoked key).  The
    message never carries a secret (a Slack URL, a routing key, a password).
    """

    def __init__(self, receiver: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"receiver {receiver!r}: {message}")
        self.receiver = receiver
        self.retryable = retryable


class StoreError(InferwatchError, RuntimeError):
    """The store cannot be reached or refused a write."""


class StoreRejectedError(StoreError):
    """The store is up but refused the rows themselves (a value it cannot hold, a
    duplicate id): retrying the same rows cannot help, so the prediction-log writer
    splits the batch and quarantines the rows that are refused on their own."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of one instance.

    ``reason`` is a short stable code (it becomes a bounded metric label):
    ``missing_feature``, ``unknown_feature``, ``wrong_type``, ``non_finite``,
    ``null_not_allowed``.  ``kind`` is the feature kind (``numeric`` ...) or ``none``.
    """

    reason: str
    field: str
    message: str
    instance: int | None = None
    kind: str = "none"

    def to_dict(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "field": self.field,
            "instance": self.instance,
            "kind": self.kind,
            "message": self.message,
        }


@dataclass(eq=False)
class ValidationError(InferwatchError, ValueError):
    """A request or a batch does not match the schema.

    ``code`` is the stable machine code of the whole failure (the JSON error's
    ``code`` and the metric's ``reason``); ``errors`` lists the offending fields.
    """

    code: str
    message: str
    errors: Sequence[FieldError] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body the server answers with (``{"error": {code, message,
        details}}``), for apps that validate with ``Monitor.validate``."""
        details = [e.to_dict() for e in self.errors]
        return {"error": {"code": self.code, "message": self.message, "details": details}}
