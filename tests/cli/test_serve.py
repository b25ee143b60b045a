"""``inferwatch serve`` as a user runs it: a real process, real HTTP, SIGTERM under load."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from inferwatch.demo import make_customers, prepare_workdir, to_instances
from inferwatch.store import SQLStore
from tests.cli.conftest import Run, ServerProcess


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("served")
    prepare_workdir(path, port=0, n_reference=1000)
    return path


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT],
    ids=["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"],
)
def test_a_stop_signal_under_load_keeps_every_answered_prediction(
    signum: signal.Signals, workdir: Path, tmp_path: Path
) -> None:
    # every catchable stop signal goes through the same graceful shutdown: in-flight
    # requests finish and the prediction log is drained (SIGHUP and SIGQUIT killed the
    # process on the spot and lost 7.6% of the answered predictions)
    db = tmp_path / "signal.db"
    server = ServerProcess(
        ["serve", "-c", str(workdir / "inferwatch.yaml"), "--store", f"sqlite:///{db}"],
        cwd=tmp_path,
    )
    proc, base = server.proc, server.base
    try:
        server.wait_ready()
        answered: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(seed: int) -> None:
            rng = np.random.default_rng(seed)
            with httpx.Client(base_url=base, timeout=10) as client:
                for _ in range(5000):  # bounded; stops much earlier
                    if stop.is_set():
                        return
                    body = {"instances": to_instances(make_customers(int(rng.integers(1, 5)), rng))}
                    try:
                        resp = client.post("/v1/models/churn/predict", json=body)
                    except httpx.HTTPError:
                        return  # the server is going away
                    if resp.status_code == 200:
                        with lock:
                            answered.extend(p["id"] for p in resp.json()["predictions"])

        threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        proc.send_signal(signum)
        rc = proc.wait(timeout=60)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert rc == 0, server.output()
    assert len(answered) > 20, "the load did not get going"
    store = SQLStore(f"sqlite:///{db}")
    try:
        assert store.count_predictions("churn") == len(answered)
        missing = [i for i in answered if store.get_prediction(i) is None]
        assert missing == []
    finally:
        store.close()


def test_zero_config_quick_start(workdir: Path, tmp_path: Path) -> None:
    server = ServerProcess(
        [
            "serve",
            "--model", str(workdir / "model.joblib"),
            "--reference", str(workdir / "reference.parquet"),
            "--target", "churned",
            "--prediction", "prediction",
            "--name", "quick",
        ],
        cwd=tmp_path,
    )  # fmt: skip
    base = server.base
    try:
        server.wait_ready()
        rng = np.random.default_rng(1)
        instances = to_instances(make_customers(3, rng))
        resp = httpx.post(f"{base}/v1/models/quick/predict", json={"instances": instances})
        assert resp.status_code == 200, resp.text
        assert len(resp.json()["predictions"]) == 3
        models = httpx.get(f"{base}/v1/models").json()["models"]
        assert [m["name"] for m in models] == ["quick"]
        assert "prediction" not in models[0]["features"]
        assert "churned" not in models[0]["features"]
    finally:
        rc = server.stop()
    assert rc == 0
    output = server.output()
    assert "serving quick" in output
    assert "setup plugin" not in output  # Alembic's start-up chatter stays off the console
    assert "alembic" not in output
    assert (tmp_path / "inferwatch.db").is_file()  # the zero-config store is in the working dir
    store = SQLStore(f"sqlite:///{tmp_path / 'inferwatch.db'}")
    assert store.count_predictions("quick") == 3
    store.close()


def test_refuses_a_public_bind_without_keys(run_cli: Run, workdir: Path) -> None:
    out = run_cli("serve", "-c", str(workdir / "inferwatch.yaml"), "--host", "0.0.0.0")
    assert out.returncode == 2
    assert "auth.keys" in out.stderr
    assert "Traceback" not in out.stderr


def test_serve_without_a_model_is_a_clear_error(run_cli: Run) -> None:
    out = run_cli("serve")
    assert out.returncode == 2
    assert "no model to serve" in out.stderr


def test_drift_window_and_interval_flags_set_the_drift_keys(tmp_path: Path) -> None:
    from inferwatch.cli._serve import _overrides
    from inferwatch.config import load_settings

    overrides = _overrides(
        tmp_path / "m.joblib", tmp_path / "r.parquet", None, None, None, None, None, None, None,
        drift_window=600.0, drift_interval=15.0,
    )  # fmt: skip
    settings = load_settings(None, overrides)

    assert settings.drift.window_seconds == 600
    assert settings.drift.evaluation_interval_seconds == 15


def test_classes_flag_names_a_tensor_models_outputs(tmp_path: Path, run_cli: Run) -> None:
    from inferwatch.cli._serve import _overrides
    from inferwatch.config import load_settings

    overrides = _overrides(
        tmp_path / "m.h5", tmp_path / "r.parquet", None, None, None, None, None, None, None,
        classes="malignant, benign",
    )  # fmt: skip
    (m,) = load_settings(None, overrides).models
    assert (m.flavor, m.classes) == ("keras", ["malignant", "benign"])
    out = run_cli("serve", "--classes", "a,b")
    assert out.returncode == 2 and "--classes go with --model" in out.stderr


@pytest.mark.parametrize(
    ("flag", "key"),
    [("--drift-window", "drift.window_seconds"),
     ("--drift-interval", "drift.evaluation_interval_seconds")],
)  # fmt: skip
def test_a_bad_drift_flag_names_its_key(run_cli: Run, workdir: Path, flag: str, key: str) -> None:
    out = run_cli(
        "serve", "--model", str(workdir / "model.joblib"),
        "--reference", str(workdir / "reference.parquet"), flag, "-5",
    )  # fmt: skip

    assert out.returncode == 2, out.stderr
    assert key in out.stderr
    assert "Traceback" not in out.stderr
