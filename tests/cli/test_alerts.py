"""``inferwatch alerts`` and ``inferwatch silence`` against a real ``inferwatch serve``."""

from __future__ import annotations

from pathlib import Path

import joblib
import yaml

from inferwatch.io import save_schema
from tests.cli.conftest import Run, ServerProcess
from tests.server.conftest import KEYS, Trained, trained

__all__ = ["trained"]  # the served model, from the server tests


def _serve(trained: Trained, tmp_path: Path) -> ServerProcess:
    joblib.dump(trained.classifier, tmp_path / "model.joblib")
    save_schema(trained.schema, tmp_path / "schema.yaml")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        "auth": {"keys": [{"name": r, "key": k, "roles": [r]} for r, k in KEYS.items()]},
        "models": [{"name": "churn", "path": "model.joblib", "schema": "schema.yaml"}],
        "alerting": {"default_pack": True, "evaluation_interval": "1s"},
    }
    (tmp_path / "inferwatch.yaml").write_text(yaml.safe_dump(config))
    return ServerProcess(["serve", "-c", str(tmp_path / "inferwatch.yaml")], cwd=tmp_path)


def test_silence_add_list_expire_and_alerts_list_through_a_running_server(
    trained: Trained, tmp_path: Path, run_cli: Run
) -> None:
    server = _serve(trained, tmp_path)
    try:
        server.wait_ready()
        admin = ["--url", server.base, "--api-key", KEYS["admin"]]
        made = run_cli("silence", "add", "model=churn", "severity=critical", "--duration", "2h",
                       "--comment", "deploy", "--author", "ana", *admin)  # fmt: skip
        assert made.returncode == 0, made.stderr
        silence_id = made.stdout.strip()
        assert len(silence_id) == 32
        assert 'model="churn"' in made.stderr and "(by ana)" in made.stderr

        listed = run_cli("silence", "list", *admin)
        assert listed.returncode == 0, listed.stderr
        assert silence_id in listed.stdout and "active" in listed.stdout

        # a reader may list but not silence: the server's refusal, exit 1
        reader = ["--url", server.base, "--api-key", KEYS["read"]]
        refused = run_cli("silence", "add", "model=churn", *reader)
        assert refused.returncode == 1
        assert "403" in refused.stderr
        bad = run_cli("silence", "add", "model=~(", *admin)
        assert bad.returncode == 1
        assert "matchers" in bad.stderr

        alerts = run_cli("alerts", "list", *reader)
        assert alerts.returncode == 0, alerts.stderr  # a fresh server: quiet, or NoTraffic
        assert "Traceback" not in alerts.stderr

        expired = run_cli("silence", "expire", silence_id, *admin)
        assert expired.returncode == 0, expired.stderr
        assert f"{silence_id} expired" in expired.stdout
        unknown = run_cli("silence", "expire", "nope", *admin)
        assert unknown.returncode == 1
        assert "no silence" in unknown.stderr
    finally:
        server.stop()
    # the server is gone: a clear message and exit 2, no traceback
    gone = run_cli("alerts", "list", "--url", server.base)
    assert gone.returncode == 2
    assert "could not reach" in gone.stderr and "Traceback" not in gone.stderr
