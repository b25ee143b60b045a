"""One-line integrations: a monitored predict function, a FastAPI route, a Flask extension.

Each validates with a monitor's schema, times the model, logs the rows and predictions
and counts the answer exactly as ``inferwatch serve`` does (see :mod:`._core`), for a
monitor built by ``Monitor.from_reference`` or ``Monitor.from_schema``:

- :func:`monitored` (here): ``@monitored(monitor)`` on a predict function, or
  ``monitored(monitor, estimator)``;
- :mod:`inferwatch.integrations.fastapi`: ``add_predict_route(app, monitor, model)`` and
  the ``@predict_route(app, monitor)`` decorator;
- :mod:`inferwatch.integrations.flask`: the ``Inferwatch(app, monitor)`` extension.

Importing this package imports neither FastAPI nor Flask; each submodule imports only
its own framework.
"""

from __future__ import annotations

from inferwatch.integrations._decorator import Monitored, monitored

__all__ = ["Monitored", "monitored"]
