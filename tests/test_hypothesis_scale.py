"""``SCOPEROUTER_HYPOTHESIS_SCALE``: the examples multiplier of ``tests/conftest.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_support import HYPOTHESIS_SCALE, hypothesis_scale, scale_examples, scale_timeouts


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


class _Item:
    """The part of a pytest item :func:`scale_timeouts` uses: its function and markers."""

    def __init__(self, obj: Any, *markers: pytest.Mark) -> None:
        self.obj = obj
        self.markers = list(markers)

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return next((m for m in self.markers if m.name == name), None)

    def add_marker(self, marker: pytest.MarkDecorator, append: bool = True) -> None:
        self.markers.insert(len(self.markers) if append else 0, marker.mark)


@pytest.mark.parametrize(
    ("own", "default_s", "scale", "expected"),
    [
        (None, 120.0, 10, 1200.0),  # the ini limit, scaled
        (300.0, 120.0, 10, 3000.0),  # a property's own budget marker, scaled
        (None, 120.0, 1, 120.0),  # scale 1: the same limit
        (None, 0.0, 10, None),  # no limit at all: none added
    ],
)
def test_scaled_property_gets_its_timeout_times_the_scale(
    own: float | None, default_s: float, scale: int, expected: float | None
) -> None:
    """A scaled property's items get scale x their timeout (own marker, else the ini's)."""
    prop, _calls = _counting_property(7)
    marks = () if own is None else (pytest.mark.timeout(own).mark,)
    item = _Item(prop, *marks)
    assert scale_timeouts([item], scale, default_s) == (0 if expected is None else 1)  # type: ignore[list-item]
    got = item.get_closest_marker("timeout")
    assert (got.args[0] if got is not None and expected is not None else None) == expected


def test_plain_tests_keep_their_timeout() -> None:
    """A test without Hypothesis is not given a scaled timeout."""

    def plain() -> None: ...

    item = _Item(plain)
    assert scale_timeouts([item], 10, 120.0) == 0  # type: ignore[list-item]
    assert item.get_closest_marker("timeout") is None
