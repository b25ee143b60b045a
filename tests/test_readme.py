"""The README's Python examples run as written (the curl examples run in tests/cli/test_demo.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    """The Python examples, less the apps marked ``# example: FILE`` (they need a server
    or a subprocess: tests/test_library_examples.py runs them)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if not b.startswith("# example: ")]


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


def test_every_config_key_is_documented() -> None:
    from pydantic import BaseModel

    from inferwatch.config import ModelSettings, Settings

    readme = README.read_text()
    missing = []
    for section, field in Settings.model_fields.items():
        model: type[BaseModel] | None
        if section == "models":
            model, prefix = ModelSettings, "models[]"
        else:
            factory = field.default_factory
            model = type(factory()) if factory is not None else None  # type: ignore[call-arg]
            prefix = section
        assert model is not None
        for key, f in model.model_fields.items():
            name = f.alias or key
            if f"`{prefix}.{name}`" not in readme:
                missing.append(f"{prefix}.{name}")
    assert missing == [], f"README's configuration table lacks {missing}"


def test_every_metric_in_the_catalogue_is_documented() -> None:
    import re

    source = (Path(__file__).resolve().parents[1] / "src/inferwatch/metrics.py").read_text()
    names = set(re.findall(r'"(inferwatch_[a-z_]+)"', source))
    readme = README.read_text()
    # Counters are exposed with _total; Info metrics with _info
    undocumented = [
        n for n in sorted(names)
        if n not in readme and f"{n}_total" not in readme and f"{n}_info" not in readme
    ]  # fmt: skip
    assert undocumented == []


def test_every_package_is_in_the_layout_section() -> None:
    """A package or public module added under src/inferwatch must get a row in the
    README's layout table (the table a newcomer reads first)."""
    src = README.parent / "src" / "inferwatch"
    text = README.read_text()
    section = text[text.index("### Layout") :]
    names = {p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in src.glob("*.py") if not p.name.startswith("_")}
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    assert sorted(names - rows) == [], "packages missing from the README's layout section"
    assert sorted(rows - names) == [], "the layout section names packages that do not exist"
