"""Loading pickles: a warning at every unpinned load, and trusted_model_hashes to refuse
any file whose SHA-256 is not listed (a pickle runs code when it is loaded)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from inferwatch.errors import ModelError
from inferwatch.models import load_model


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    labels = np.where(frame["a"] + frame["b"] > 0, "yes", "no")
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression().fit(frame, labels), path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_loading_a_pickle_warns_that_it_runs_code(
    model_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="inferwatch.models"):
        load_model(model_file)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert str(model_file) in text
    assert "runs code" in text
    assert "trusted_model_hashes" in text
    assert sha256(model_file) in text  # what to pin


def test_a_listed_digest_loads_without_the_warning(
    model_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="inferwatch.models"):
        adapter = load_model(model_file, trusted_hashes=["0" * 64, sha256(model_file).upper()])

    assert list(adapter.classes or ()) == ["no", "yes"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_digest_not_listed_is_refused_before_the_file_is_unpickled(
    model_file: Path, tmp_path: Path
) -> None:
    trusted = [sha256(model_file)]
    evil = tmp_path / "evil.pkl"
    marker = tmp_path / "ran"
    # a pickle that would create ``marker`` when loaded
    evil.write_bytes(b"cbuiltins\nopen\n(" + repr(str(marker)).encode() + b"\nS'w'\ntR.")

    with pytest.raises(ModelError) as info:
        load_model(evil, trusted_hashes=trusted)

    message = str(info.value)
    assert sha256(evil) in message
    assert "trusted_model_hashes" in message
    assert not marker.exists()


def test_a_folder_is_not_a_model_file(tmp_path: Path) -> None:
    folder = tmp_path / "model.joblib"
    folder.mkdir()

    with pytest.raises(ModelError, match="is a folder"):
        load_model(folder)
