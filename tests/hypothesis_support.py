"""``SCOPEROUTER_HYPOTHESIS_SCALE``: the examples multiplier ``tests/conftest.py`` applies to
every ``@given`` property at collection (a support module: importable from any test
directory, unlike a ``conftest``)."""

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
