"""``SCOPEROUTER_HYPOTHESIS_SCALE``: the examples multiplier ``tests/conftest.py`` applies to
every ``@given`` property at collection, and to its per-test timeout (a support module:
importable from any test directory, unlike a ``conftest``)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

HYPOTHESIS_SCALE = "SCOPEROUTER_HYPOTHESIS_SCALE"
"""``SCOPEROUTER_HYPOTHESIS_SCALE=10 pytest ...``: every ``@given`` property runs ten times
its examples (its own ``max_examples``, else the profile's), for a longer search by hand or
in a nightly job. Unset or 1: as written."""


def hypothesis_scale(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """The examples multiplier from the environment: a whole number >= 1."""
    raw = environ.get(HYPOTHESIS_SCALE, "").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise pytest.UsageError(f"{HYPOTHESIS_SCALE}={raw!r}: expected a whole number >= 1")
    return int(raw)


def scale_examples(items: list[pytest.Item], scale: int) -> int:
    """Multiply the examples of each ``@given`` test among ``items`` by ``scale`` (once per
    function, however many parametrized items share it); returns how many were scaled.
    Hypothesis reads a test's settings when the test runs, so this takes effect."""
    done: set[int] = set()
    for item in items:
        fn = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
        current = getattr(fn, "_hypothesis_internal_use_settings", None)
        if current is None or id(fn) in done:
            continue
        done.add(id(fn))
        fn._hypothesis_internal_use_settings = settings(  # type: ignore[union-attr]
            current, max_examples=current.max_examples * scale
        )
    return len(done)


def scale_timeouts(items: list[pytest.Item], scale: int, default_s: float) -> int:
    """Give every item of a ``@given`` property ``scale`` times its pytest-timeout limit (its
    ``timeout`` marker, else ``default_s``, the ini ``timeout``): ten times the examples take
    about ten times as long, and the limit set for the examples as written would end a
    longer search as a failure that no example caused. Returns how many items."""
    n = 0
    for item in items:
        fn = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
        if getattr(fn, "_hypothesis_internal_use_settings", None) is None:
            continue
        marker = item.get_closest_marker("timeout")
        base = float(marker.args[0]) if marker is not None and marker.args else default_s
        if base > 0:  # 0: no limit, none to scale
            item.add_marker(pytest.mark.timeout(base * scale), append=False)  # closest first
            n += 1
    return n
