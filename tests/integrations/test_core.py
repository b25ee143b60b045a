"""What the integrations share with the server, and what each one imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inferwatch.integrations import _core


def test_statuses_and_trace_ids_are_the_servers() -> None:
    from inferwatch import _wire
    from inferwatch.server import _errors, _predict

    codes = [*_wire._STATUS_FOR_CODE, "wrong_type", "missing_feature", "non_finite"]
    assert {c: _core.status_for(c) for c in codes} == {c: _errors.status_for(c) for c in codes}
    from inferwatch._traceparent import trace_id

    assert _predict.trace_id is trace_id  # one parser for the server and the integrations
    for media in ("application/json", "application/ld+json; charset=utf-8", "text/plain", None):
        assert _core.is_json_media_type(media) == _predict.is_json_media_type(media)


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("inferwatch.integrations", ("flask", "werkzeug", "fastapi", "starlette")),
        ("inferwatch.integrations.flask", ("fastapi", "starlette", "uvicorn")),
        ("inferwatch.integrations.fastapi", ("flask",)),
    ],
)
def test_each_integration_imports_only_its_framework(module: str, absent: tuple[str, ...]) -> None:
    code = f"import sys, {module}\nprint(','.join(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"
