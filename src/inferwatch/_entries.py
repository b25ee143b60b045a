"""Lists of named config entries told apart by a tag (``alerting.receivers`` by ``type``,
``alerting.actions`` by ``kind``), checked with every problem at its key path.

One place for what each such list needs: an entry validated against the tagged union
(an entry that already is a config model, built in code, is kept as it is), pydantic's
error locations turned into ``alerting.receivers[2].url_file`` (the union's tag is not a
key of the config), a missing or unknown tag reported at ``[i].type``, and a name used
twice reported at the second entry.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import pydantic
from pydantic import BaseModel, TypeAdapter

__all__ = ["validate_named_entries"]

_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


def _key(loc: Sequence[int | str], tags: Collection[str]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p not in tags)


def validate_named_entries(
    adapter: TypeAdapter[Any],
    entries: Sequence[Any],
    *,
    path: str,
    tags: Collection[str],
    tag_key: str,
    explain_tag: bool = False,
) -> tuple[list[str], list[Any]]:
    """``(problems, configs)``: one ``path[i].key: message`` line per problem, and each
    entry's config model (None where it is invalid), in order.

    ``tags`` are the union's tag values and ``tag_key`` the key holding them; with
    ``explain_tag`` an unknown tag reads ``must be one of ..., got ...``.
    """
    problems: list[str] = []
    configs: list[Any] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"{path}[{i}]"
        try:
            config: Any = entry if isinstance(entry, BaseModel) else adapter.validate_python(entry)
        except pydantic.ValidationError as exc:
            for err in exc.errors():
                key = _key(err["loc"], tags)
                if err["type"] in _TAG_ERRORS:
                    key += f".{tag_key}"  # a missing or unknown tag is reported at the entry
                message = err["msg"].removeprefix("Value error, ")
                if explain_tag and err["type"] == "union_tag_invalid":
                    got = entry.get(tag_key) if isinstance(entry, dict) else None
                    message = f"must be one of {', '.join(tags)}, got {got!r}"
                problems.append(f"{where}{key}: {message}")
            configs.append(None)
            continue
        if config.name in seen:
            problems.append(
                f"{where}.name: {config.name!r} is already the name of {path}[{seen[config.name]}]"
            )
        seen.setdefault(config.name, i)
        configs.append(config)
    return problems, configs
