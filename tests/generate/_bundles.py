"""Configs the generate tests share: every receiver type, secrets from each source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferwatch.config import Settings

INLINE_SECRETS = ("http://127.0.0.1:5001/inline-hook-s3cr3t", "pd-inline-R0UTING")
BAND_RULE = {
    "name": "LatencyUnusual",
    "signal": "latency",
    "unusual": {"history": "2h", "step": "1m", "min_history": "1h"},
}
ENV_SECRETS = {"IW_TEST_PD_KEY": "pd-env-K3Y", "IW_TEST_SMTP_PW": "smtp-env-PASSW0RD"}


def full_alerting(secret_dir: Path) -> dict[str, Any]:
    """The default pack, SLOs, every receiver type (secrets inline, from env and files)
    and a route with ``continue``."""
    slack_file = secret_dir / "slack_url"
    slack_file.write_text("https://hooks.slack.com/services/T0/B0/file-s3cr3t\n")
    receivers = [
        {"name": "hook", "type": "webhook", "url": INLINE_SECRETS[0], "max_alerts": 5},
        {"name": "chat", "type": "slack", "url_file": str(slack_file), "channel": "#ml"},
        {"name": "pager", "type": "pagerduty", "routing_key_env": "IW_TEST_PD_KEY"},
        {"name": "pager2", "type": "pagerduty", "routing_key": INLINE_SECRETS[1],
         "dedup": "alert", "url": "http://127.0.0.1:9/enqueue"},
        {"name": "mail", "type": "email", "to": ["oncall@example.com", "ml@example.com"],
         "from": "inferwatch@example.com", "smarthost": "smtp.example.com:587",
         "hello": "inferwatch.example.com", "username": "iw",
         "password_env": "IW_TEST_SMTP_PW", "send_resolved": False},
        {"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:19093"},
    ]  # fmt: skip
    return {
        "default_pack": True,
        "rules": [BAND_RULE],  # threshold-free: recording rules, their promtool test
        "evaluation_interval": "30s",
        "slos": [
            {"name": "availability", "sli": "availability", "objective": 0.999},
            {"name": "fast", "sli": "latency", "objective": 0.99, "threshold": 0.5},
            {"name": "accurate", "sli": "accuracy", "objective": 0.9},
        ],
        "receivers": receivers,
        "route": {
            "receiver": "chat",
            "group_by": ["alertname", "model"],
            "group_wait": "10s",
            "group_interval": "2m",
            "repeat_interval": "3h",
            "routes": [
                {"matchers": ["severity=critical"], "receiver": "pager", "continue": True},
                {"matchers": ["severity=critical", "model!=canary"], "receiver": "mail"},
                {"matchers": ['model=~"iris|wine"'], "receiver": "hook"},
            ],
        },
    }


def full_settings(secret_dir: Path) -> Settings:
    return Settings(
        server={"host": "0.0.0.0", "port": 8123},
        auth={
            "keys": [{"name": "prom", "key": "k" * 20, "roles": ["read"]}],
            "open_metrics": False,
        },
        alerting=full_alerting(secret_dir),
    )
