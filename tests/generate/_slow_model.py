"""A regressor whose ``predict`` sleeps while a flag file exists: a model that turns slow
and recovers, for the end-to-end latency alert (imported by the server process)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


class SlowModel:
    """Wraps a fitted scikit-learn regressor; each ``predict`` call first sleeps
    ``delay`` seconds when ``flag`` exists (the test creates and removes the file)."""

    _estimator_type = "regressor"

    def __init__(self, inner: Any, flag: Path, delay: float) -> None:
        self.inner = inner
        self.flag = str(flag)
        self.delay = delay
        self.feature_names_in_ = inner.feature_names_in_

    def predict(self, x: Any) -> Any:
        if Path(self.flag).exists():
            time.sleep(self.delay)
        return self.inner.predict(x)
