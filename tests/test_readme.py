"""The README's Python examples run as written (the curl examples run in tests/cli/test_demo.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples() -> None:
    assert python_blocks()


@pytest.mark.parametrize("code", python_blocks())
def test_python_example_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    if "monitor" in namespace:  # the Monitor example: its rows reached the store
        from inferwatch.store import SQLStore

        store = SQLStore(f"sqlite:///{tmp_path / 'predictions.db'}")
        assert store.count_predictions("churn", "3") == 1
        store.close()
