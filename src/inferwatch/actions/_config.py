"""The ``alerting.actions`` config entries: one pydantic model per action kind.

An action names the alerts it answers (``when``: label matchers in
:meth:`inferwatch.alerting.Matcher.parse` syntax, all of which must hold), what it does
(``kind``: rollback, retrain or scale) and a ``cooldown``: after it ran for a model it
does not run again for that model until the cooldown has passed (a trigger inside it is
recorded as skipped), so a flapping alert cannot roll a model back and forth or start a
retraining job every cycle.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from inferwatch._entries import validate_named_entries
from inferwatch.alerting import Matcher

__all__ = [
    "ActionConfig",
    "RetrainActionConfig",
    "RollbackActionConfig",
    "ScaleActionConfig",
    "load_actions",
]


def _seconds(value: Any) -> Any:
    """A Prometheus duration (``5m``, ``1h``, ``6h``) or plain seconds, as the rules take them."""
    if isinstance(value, str):
        from inferwatch.rules import parse_duration

        return parse_duration(value)  # ValueError: pydantic reports it at the key's path
    return value


def _matcher(text: str) -> str:
    """A ``when`` item must parse as a matcher (the error names it, at its index)."""
    Matcher.parse(text)
    return text


class _ActionBase(BaseModel):
    """What every action has: a unique name, the alerts it answers and its cooldown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    when: list[Annotated[str, AfterValidator(_matcher)]] = Field(
        min_length=1,
        description="Label matchers of the alerts that trigger it, all of which must hold "
        '(alertname=AccuracyLow, severity=critical, model=~"iris|wine").',
    )
    cooldown: float = Field(
        3600.0, ge=0, description="Per model: no second run before this has passed (1h)."
    )

    _durations = field_validator("cooldown", mode="before")(_seconds)

    @property
    def matchers(self) -> tuple[Matcher, ...]:
        return tuple(Matcher.parse(text) for text in self.when)


class RollbackActionConfig(_ActionBase):
    """Roll the alert's model back to its previous version (the model registry knows
    which versions exist and which is live)."""

    kind: Literal["rollback"]


class RetrainActionConfig(_ActionBase):
    """Call a retraining hook with the evidence: ``command`` (run without a shell, the
    evidence as JSON on stdin and in the file ``$INFERWATCH_EVIDENCE_FILE``) or ``url``
    (the evidence POSTed as JSON), bounded by ``timeout``."""

    kind: Literal["retrain"]
    command: list[str] | None = Field(None, min_length=1)
    url: str | None = Field(None, pattern=r"^https?://")
    timeout: float = Field(600.0, gt=0, description="Longest a run may take (10m).")

    _timeout = field_validator("timeout", mode="before")(_seconds)

    @field_validator("command")
    @classmethod
    def _no_empty_program(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value[0].strip():
            raise ValueError("the program (the first item) is empty")
        return value

    @model_validator(mode="after")
    def _one_hook(self) -> RetrainActionConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("set exactly one of command or url")
        return self


class ScaleActionConfig(_ActionBase):
    """Publish a desired-replicas hint (``inferwatch_desired_replicas{model}``) for a
    Kubernetes HPA: ``clamp(ceil(replicas * value / target), min_replicas,
    max_replicas)``, the HPA's own formula, where ``value`` is the alert's value and
    ``replicas`` the current count (the last hint published, else ``replicas``)."""

    kind: Literal["scale"]
    target: float = Field(gt=0, description="The alert's signal per replica to aim for.")
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(10, ge=1)
    replicas: int | None = Field(
        None, ge=1, description="Replicas running before the first hint (min_replicas)."
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScaleActionConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self


#: One ``alerting.actions`` entry, told apart by its ``kind``.
ActionConfig = Annotated[
    RollbackActionConfig | RetrainActionConfig | ScaleActionConfig,
    Field(discriminator="kind"),
]

_KINDS = ("rollback", "retrain", "scale")


def load_actions(
    entries: list[Any], *, path: str = "alerting.actions"
) -> tuple[list[str], list[Any]]:
    """The entries as config models, and every problem found, one
    ``alerting.actions[i].key: message`` line each (a duplicate name too)."""
    problems, configs = validate_named_entries(
        TypeAdapter(ActionConfig), entries, path=path, tags=_KINDS, tag_key="kind",
        explain_tag=True,
    )  # fmt: skip
    return problems, [c for c in configs if c is not None]
