"""Monitoring as code: the Prometheus, rule and Alertmanager files a config implies.

Adapter layer.  ``inferwatch generate [WHAT...] --config F --out DIR`` writes, from the
same ``inferwatch.yaml`` that ``serve`` reads:

- ``prometheus.yml``: scrape the server (and a Pushgateway with ``honor_labels``), load
  the rule files, send alerts to Alertmanager;
- ``rules/inferwatch.yml`` (+ ``rules/slo.yml``): the PromQL of every configured rule
  (:func:`inferwatch.rules.to_prometheus`, :func:`~inferwatch.rules.slo_rules`), and
  ``rules/*_test.yml`` beside them, which ``promtool test rules`` runs;
- ``alertmanager.yml``: the config's ``alerting.route`` and ``alerting.receivers``
  translated to Alertmanager's, with the inhibition the built-in engine applies;
- ``k8s/*.yaml``: Deployment (probes, grace period, the Secret's references), Service,
  ServiceMonitor and PrometheusRule for the Prometheus Operator (:mod:`._k8s`);
- ``grafana/``: dashboards built with grafana-foundation-sdk over the Prometheus metrics
  (every query in :data:`._grafana_panels.PANELS`) and Grafana's provisioning files for
  the datasource(s) and the dashboards (:mod:`._grafana`).

Secrets are never written: a secret the config reads from a file is referenced by that
file (``*_file``), one given inline or in an environment variable becomes a ``*_file``
reference to ``secrets/NAME`` that the deployment must create (a note says so).
"""

from __future__ import annotations

from inferwatch.generate._alertmanager import alertmanager_config
from inferwatch.generate._bundle import generate, write_bundle
from inferwatch.generate._grafana import dashboard_json, grafana_files
from inferwatch.generate._grafana_panels import PANELS
from inferwatch.generate._k8s import k8s_manifests, shutdown_seconds
from inferwatch.generate._model import TARGETS, Bundle, GenerateError, GenerateOptions
from inferwatch.generate._prometheus import prometheus_config
from inferwatch.generate._rules import rule_files

__all__ = [
    "TARGETS",
    "Bundle",
    "GenerateError",
    "GenerateOptions",
    "PANELS",
    "alertmanager_config",
    "dashboard_json",
    "generate",
    "grafana_files",
    "k8s_manifests",
    "prometheus_config",
    "rule_files",
    "shutdown_seconds",
    "write_bundle",
]
