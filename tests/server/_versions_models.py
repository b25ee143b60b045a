"""Estimators for the shadow tests: a slow one and a broken one (pickled by reference to
this module, so a server process needs the repository root on its PYTHONPATH)."""

from __future__ import annotations

import time
from typing import Any


class Slow:
    """Delegates to ``inner`` after sleeping ``seconds`` per call."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self.classes_ = inner.classes_
        self.feature_names_in_ = inner.feature_names_in_  # the adapter passes a DataFrame

    def predict(self, frame: Any) -> Any:
        time.sleep(self.seconds)
        return self.inner.predict(frame)

    def predict_proba(self, frame: Any) -> Any:
        time.sleep(self.seconds)
        return self.inner.predict_proba(frame)


class Broken:
    """Has the classes of ``inner`` and fails on every prediction."""

    def __init__(self, inner: Any) -> None:
        self.classes_ = inner.classes_

    def predict(self, frame: Any) -> Any:
        raise RuntimeError("the candidate is broken")


class Toggled:
    """Delegates to ``inner``, first sleeping ``Toggled.delay`` seconds (a class attribute,
    so a test switches the latency of every loaded copy at once, in process)."""

    delay = 0.0

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.classes_ = inner.classes_
        self.feature_names_in_ = inner.feature_names_in_

    def predict(self, frame: Any) -> Any:
        if Toggled.delay:
            time.sleep(Toggled.delay)
        return self.inner.predict(frame)

    def predict_proba(self, frame: Any) -> Any:
        if Toggled.delay:
            time.sleep(Toggled.delay)
        return self.inner.predict_proba(frame)
