"""The facade's example runs as written (doctest), so the README's promise is checked."""

from __future__ import annotations

import doctest

import inferwatch.concept


def test_the_facade_example_runs() -> None:
    result = doctest.testmod(inferwatch.concept, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
