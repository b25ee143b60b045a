"""A throwaway PostgreSQL cluster on loopback, as pytest fixtures (``pytest_plugins``).

``postgres_url`` (session) starts one cluster with ``initdb`` and ``pg_ctl`` in a
temporary directory and stops it at the end; ``postgres_db_url`` (function) creates
a fresh empty database in it for one test and drops it afterwards.  Without the
server binaries the fixtures skip (and a skip fails the run under ``CI=true``).
PostgreSQL refuses to run as root, so as root the binaries run as ``nobody``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["find_pg_bin", "free_port", "postgres_cluster", "postgres_db_url", "postgres_url"]

SKIP_REASON = "PostgreSQL server binaries not found (apt-get install postgresql)"
_UNPRIVILEGED_USER = "nobody"
_TIMEOUT = 60  # seconds, for any one initdb / pg_ctl call


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, else the newest Debian one."""
    found = shutil.which("initdb")
    if found and Path(found).with_name("pg_ctl").exists():
        return Path(found).parent

    def major(path: str) -> int:
        match = re.search(r"/postgresql/(\d+)/", path)
        return int(match.group(1)) if match else -1

    candidates = [
        path
        for path in glob.glob("/usr/lib/postgresql/*/bin")
        if Path(path, "initdb").exists() and Path(path, "pg_ctl").exists()
    ]
    return Path(max(candidates, key=major)) if candidates else None


def free_port() -> int:
    """A loopback port that was free a moment ago.  Only for PostgreSQL, which cannot be
    told to bind port 0 and report it; ``postgres_cluster`` retries when the port is taken
    between this call and the server's bind.  Our own servers bind port 0 instead."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user(argv: list[str]) -> list[str]:
    """``argv``, run as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", _UNPRIVILEGED_USER, "--", *argv]
    return ["su", _UNPRIVILEGED_USER, "-s", "/bin/sh", "-c", shlex.join(argv)]


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(
        _as_postgres_user(argv),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(argv)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )


def _stop(bin_dir: Path, data: Path, base: Path) -> None:
    try:
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], base)
    except (RuntimeError, subprocess.TimeoutExpired):
        # last resort: an immediate shutdown of the postmaster, by the pid it recorded
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)


@contextlib.contextmanager
def postgres_cluster(bin_dir: Path) -> Iterator[str]:
    """Start a cluster from ``bin_dir`` and yield its superuser URL; stop and delete it after."""
    base = Path(tempfile.mkdtemp(prefix="inferwatch-pg-", dir="/tmp"))
    base.chmod(0o755)  # traversable by the unprivileged user
    if os.geteuid() == 0:
        user = pwd.getpwnam(_UNPRIVILEGED_USER)
        os.chown(base, user.pw_uid, user.pw_gid)
    data = base / "data"
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "--encoding=UTF8",
                "--no-sync",
            ],
            base,
        )
        data.chmod(0o700)
        for attempt in range(3):  # the free port can be taken between finding and binding it
            port = free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -F"
            argv = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options]
            argv += ["-l", str(base / "server.log"), "-w", "-t", "30", "start"]
            try:
                _run(argv, base)
            except RuntimeError:
                if attempt == 2:
                    log = base / "server.log"
                    raise RuntimeError(
                        log.read_text() if log.exists() else "no server log"
                    ) from None
                continue
            started = True
            break
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _stop(bin_dir, data, base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The superuser URL of a PostgreSQL cluster started once for the whole session."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip(SKIP_REASON)
    with postgres_cluster(bin_dir) as url:
        yield url


@pytest.fixture
def postgres_db_url(postgres_url: str) -> Iterator[str]:
    """A URL to a new, empty database, dropped (connections and all) after the test."""
    psycopg = pytest.importorskip("psycopg")
    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
