"""``SCOPEROUTER_HYPOTHESIS_SCALE``: the examples multiplier of ``tests/conftest.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_support import HYPOTHESIS_SCALE, hypothesis_scale, scale_examples


def _counting_property(max_examples: int) -> tuple[Any, list[int]]:
    """A ``@given`` property with its own ``max_examples`` and the list of what it ran."""
    calls: list[int] = []

    @settings(max_examples=max_examples, database=None)
    @given(st.integers())
    def prop(x: int) -> None:
        calls.append(x)

    return prop, calls


@pytest.mark.parametrize("scale", [1, 3])
def test_scaled_property_runs_its_examples_times_the_scale(scale: int) -> None:
    """A property of 7 examples runs 7 x scale of them once scaled, however many items share it."""
    prop, calls = _counting_property(7)
    items: Any = [SimpleNamespace(obj=prop), SimpleNamespace(obj=prop)]  # two parametrized items
    assert scale_examples(items, scale) == 1
    prop()
    assert len(calls) == 7 * scale


def test_items_without_hypothesis_are_left_alone() -> None:
    """A plain test function is not counted or touched."""

    def plain() -> None: ...

    items: Any = [SimpleNamespace(obj=plain), SimpleNamespace(obj=None)]
    assert scale_examples(items, 10) == 0
    assert not hasattr(plain, "_hypothesis_internal_use_settings")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 1), ("", 1), ("1", 1), (" 10 ", 10), ("0", None), ("-2", None), ("x", None)],
)
def test_scale_from_the_environment(raw: str | None, expected: int | None) -> None:
    """Unset or blank is 1; a whole number >= 1 is taken; anything else is a usage error."""
    env = {} if raw is None else {HYPOTHESIS_SCALE: raw}
    if expected is None:
        with pytest.raises(pytest.UsageError, match=HYPOTHESIS_SCALE):
            hypothesis_scale(env)
    else:
        assert hypothesis_scale(env) == expected
