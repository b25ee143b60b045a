#!/usr/bin/env bash
# Set-up steps behind `make demo` and `make test` on a fresh Debian 12 machine.
#   bootstrap.sh venv PYTHON DIR   create the virtualenv (installs python3-venv when needed)
#   bootstrap.sh system            install the Debian packages the integration tests use
set -euo pipefail

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }

apt_install() {
  if ! can_apt; then
    echo "note: cannot install $* (needs apt-get and root); the tests that need them will skip" >&2
    return 0
  fi
  if [ ! -f /var/lib/apt/lists/.inferwatch-updated ] || [ -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v lock | head -1)" ]; then
    apt-get update -qq && touch /var/lib/apt/lists/.inferwatch-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_pg() {
  command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1
}

case "${1:-}" in
  venv)
    python="${2:-python3}"; dir="${3:-.venv}"
    if ! "$python" -m venv "$dir" 2>/dev/null; then
      rm -rf "$dir"
      apt_install python3-venv
      "$python" -m venv "$dir"
    fi
    ;;
  system)
    missing=()
    have_pg || missing+=(postgresql)
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    # PySpark (the Spark profiling tests) runs on a Java 17+ runtime
    java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || missing+=(openjdk-17-jre-headless)
    command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
    command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
    # the dashboard's browser tests (tests/ui) and scripts/screenshots.py: Debian's build,
    # driven by Playwright with executable_path (never a browser Playwright downloads)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    if [ ${#missing[@]} -gt 0 ]; then
      echo "installing Debian packages: ${missing[*]}"
      apt_install "${missing[@]}"
      # The packages start their own services where an init system runs; the tests
      # start private instances on free loopback ports instead.
      for svc in postgresql prometheus prometheus-pushgateway prometheus-alertmanager; do
        service "$svc" stop >/dev/null 2>&1 || true
      done
    fi
    ;;
  *)
    echo "usage: $0 venv PYTHON DIR | system" >&2
    exit 2
    ;;
esac
