"""Settings: precedence (CLI > env > YAML > defaults), path resolution, errors naming the key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydantic
import pytest

from inferwatch.config import Settings, is_loopback, load_settings, mask_url
from inferwatch.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inferwatch.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("INFERWATCH_"):
            monkeypatch.delenv(key)
    s = load_settings()
    assert s.server.host == "127.0.0.1"
    assert s.server.port == 8000
    assert s.models == []
    assert not s.auth.enabled


def test_precedence_cli_over_env_over_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "server:\n  port: 7000\n  max_batch_size: 10\nstore:\n  batch_size: 3\n")
    assert load_settings(path).server.port == 7000
    monkeypatch.setenv("INFERWATCH_SERVER__PORT", "7100")
    s = load_settings(path)
    assert s.server.port == 7100
    assert s.server.max_batch_size == 10  # a sibling key from the YAML survives the env override
    s = load_settings(path, {"server": {"port": 7200}})
    assert s.server.port == 7200
    assert s.server.max_batch_size == 10
    assert s.store.batch_size == 3


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    path = write(
        sub,
        "store:\n  url: sqlite:///data/iw.db\nmodels:\n"
        "  - name: m\n    path: model.joblib\n    reference: ref.parquet\n",
    )
    s = load_settings(path)
    assert s.models[0].path == (sub / "model.joblib").resolve()
    assert s.models[0].reference == (sub / "ref.parquet").resolve()
    assert s.store.url == f"sqlite:///{(sub / 'data' / 'iw.db').resolve()}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server:\n  port: abc\n", "server.port: Input should be a valid integer"),
        ("server:\n  port: 70000\n", "server.port: Input should be less than or equal to 65535"),
        ("store:\n  queue_size: 0\n", "store.queue_size: Input should be greater than"),
        ("serverr:\n  port: 1\n", "serverr: Extra inputs are not permitted"),
        ("models:\n  - name: m\n", "models[0].path: Field required"),
        ("models:\n  - name: 'a b'\n    path: x\n    reference: r\n", "models[0].name: must start"),
        ("models:\n  - name: m\n    path: x\n", "give 'schema'"),
        ("auth:\n  keys:\n    - {name: k, key: short, roles: [predict]}\n", "auth.keys[0]: an API"),
        (
            "auth:\n  keys:\n    - {name: k, key: 0123456789abcdef, roles: [root]}\n",
            "auth.keys[0].roles[0]: Input should be",
        ),
    ],
)
def test_invalid_config_names_the_key_path(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert expected in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_bad_env_value_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERWATCH_SERVER__PORT", "eighty")
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings()


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(write(tmp_path, "server: [unclosed\n"))


def test_api_keys_are_hashed_at_load_and_masked_in_show(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-key-0123456789"
    monkeypatch.setenv(
        "INFERWATCH_AUTH__KEYS", f'[{{"name": "ci", "key": "{secret}", "roles": ["predict"]}}]'
    )
    s = load_settings()
    key = s.auth.keys[0]
    assert key.key is None
    assert key.key_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    shown = str(s.masked())
    assert secret not in shown
    assert key.key_sha256 not in shown


def test_mask_url_and_loopback() -> None:
    assert mask_url("postgresql+psycopg://u:pw@db:5432/x") == "postgresql+psycopg://u:***@db:5432/x"
    assert mask_url("sqlite:///a.db") == "sqlite:///a.db"
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.3.2.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("example.org")


def test_duplicate_model_names_rejected() -> None:
    m = {"name": "m", "path": "x", "reference": "r"}
    with pytest.raises(ConfigError, match="listed twice"):
        load_settings(None, {"models": [m, m]})
    assert isinstance(Settings(), Settings)


def test_a_secret_is_never_echoed_in_an_error(tmp_path: Path) -> None:
    # an unquoted number is read by YAML as an int: the error used to print it back
    path = tmp_path / "inferwatch.yaml"
    path.write_text(
        "auth:\n  keys:\n    - name: ci\n      key: 12345678901234567890\n      roles: [predict]\n"
        "    - name: ops\n      key_sha256: 98765432109876543210\n      roles: [admin]\n"
    )

    with pytest.raises(ConfigError) as info:
        load_settings(path)

    message = str(info.value)
    assert "auth.keys[0].key" in message
    assert "12345678901234567890" not in message
    assert "98765432109876543210" not in message
    assert "hidden" in message


def test_a_bad_yaml_line_is_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "inferwatch.yaml"
    path.write_text('auth:\n  keys:\n    - {name: ci, key: "s3cret-value-0123456789, roles: [x]\n')

    with pytest.raises(ConfigError, match="line") as info:
        load_settings(path)

    assert "s3cret-value" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://user:pw@localhost/db", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://user:pw@localhost/db", "postgresql+psycopg"),
        ("inferwatch.db", "not a database URL"),
    ],
)
def test_the_store_url_scheme_is_checked_at_load(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"store": {"url": url}})

    message = str(info.value)
    assert "store.url" in message
    assert expected in message
    assert "pw@" not in message


@pytest.mark.parametrize(
    "url", ["sqlite:///x.db", "sqlite://", "postgresql://u@h/d", "postgresql+psycopg://u@h/d"]
)
def test_supported_store_urls_load(url: str) -> None:
    assert load_settings(None, {"store": {"url": url}}).store.url.split(":")[0] == url.split(":")[0]


def test_trusted_model_hashes_are_sha256_digests(tmp_path: Path) -> None:
    model = {"name": "m", "path": "m.joblib", "schema": "s.yaml"}
    digest = "AB" * 32
    settings = load_settings(None, {"models": [{**model, "trusted_model_hashes": [digest]}]})
    assert settings.models[0].trusted_model_hashes == ["ab" * 32]

    with pytest.raises(ConfigError, match=r"models\[0\]\.trusted_model_hashes.*SHA-256"):
        load_settings(None, {"models": [{**model, "trusted_model_hashes": ["abc"]}]})


def test_an_in_memory_store_is_a_valid_store_url() -> None:
    assert load_settings(None, {"store": {"url": "memory://"}}).store.url == "memory://"


def test_a_band_step_shorter_than_the_evaluation_interval_is_refused() -> None:
    from inferwatch.config import AlertingSettings

    band = {"name": "Few", "signal": "requests", "comparison": "<", "unusual": {"step": "5m"}}
    with pytest.raises(pydantic.ValidationError, match=r"rules\[0\]\.unusual\.step: 300 s is"):
        AlertingSettings(evaluation_interval="10m", rules=[band])
    assert AlertingSettings(evaluation_interval="5m", rules=[band]).to_rules()[0].band is not None
