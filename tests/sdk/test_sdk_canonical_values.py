"""One canonical form for comparing values (diff_rows) and digesting them (field_digests,
row_digest): both give the same answer for every value, array-likes (an object with
``tolist()``, e.g. a REPEATED column read through ``to_dataframe``) are read in full -- a
change anywhere in a long array is a change -- and the digest of an ordinary value is what
it always was (processors persist them)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoperouter.sdk.canonical import canonical_text, same
from scoperouter.sdk.change_detection import diff_rows, field_digests, row_digest, value_digest


class Ambiguous:
    """An elementwise comparison's result: no truth value (as an array's)."""

    def __bool__(self) -> bool:
        raise ValueError("the truth value of an array with more than one element is ambiguous")


class ArrayLike:
    """An array library's array, without the library: ``tolist()``, elementwise ``==``,
    and a ``str()`` that elides the middle of a long array."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def tolist(self) -> list[Any]:
        return list(self.items)

    def __eq__(self, other: object) -> Any:
        return Ambiguous()

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        if len(self.items) <= 6:
            return str(self.items)
        return f"[{self.items[0]} {self.items[1]} ... {self.items[-1]}]"


class Scalar:
    """An array library's scalar (numpy.int64, numpy.bool_: a to_dataframe cell), without
    the library: ``tolist()`` gives its Python value, ``str()`` its text."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def tolist(self) -> Any:
        return self.value

    def __str__(self) -> str:
        return str(self.value)


BIG = list(range(2000))
BIG_CHANGED = [*BIG[:1000], -1, *BIG[1001:]]


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        ({1}, {True}, True),  # the documented rule: 1 and True differ at every depth
        ({1: "a"}, {True: "a"}, True),
        ({"b", "a"}, {"a", "b"}, False),  # a set has no order
        (0.0, -0.0, True),
        (Decimal("1.0"), Decimal("1.00"), True),
        ((1, 2), [1, 2], False),  # an array is an array, tuple or list
        (ArrayLike([1, 2]), ArrayLike([1, 2]), False),
        (ArrayLike([1, 2]), [1, 2], False),
        (ArrayLike(BIG), ArrayLike(BIG_CHANGED), True),  # a change past str()'s elision
        (ArrayLike([[1, 2], [3, 4]]), ArrayLike([[1, 2], [3, 5]]), True),
        ({date(2025, 11, 17): 20}, {date(2025, 11, 17): 21}, True),
        ({date(2025, 11, 17): 20}, {date(2025, 11, 17): 20}, False),
        ({"x": [1, {date(2025, 1, 1): 1.0}]}, {"x": [1, {date(2025, 1, 1): 1}]}, True),
        (float("nan"), float("nan"), False),
        (
            datetime(2025, 11, 19, 18, 0, tzinfo=UTC),
            datetime.fromisoformat("2025-11-19T13:00:00-05:00"),
            False,
        ),
        (1, 1.0, True),
        ("2025-11-19", "2025-11-20", True),
        # a scalar is its Python value (it was its str(): 27 and "27" alike, 27 not 27)
        (Scalar(27), 27, False),
        (Scalar(True), True, False),
        (Scalar(27), "27", True),
        (Scalar(True), "True", True),
        (Scalar(1), Scalar(True), True),
    ],
)
def test_diff_and_digests_agree(before: Any, after: Any, changed: bool) -> None:
    """diff_rows names the field exactly when its digests differ, for every kind of value."""
    diff = diff_rows({"e": {"x": before}}, {"e": {"x": after}})
    assert (diff.fields == ("x",), bool(diff)) == (changed, changed)
    assert (field_digests({"x": before}) != field_digests({"x": after})) is changed


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        (5, "ef2d127de37b942b"),
        ("lebronjames", "27ce28dd97e623f4"),
        (27.5, "d978b6fd23fe948e"),
        (True, "b5bea41b6c623f7c"),
        (None, "74234e98afe7498f"),
        ([1, "a", 2.5], "0ca5acde96cc0453"),
        ((1, 2), "49a64717d5d4cb19"),
        ({"b": 1, "a": [True, None]}, "51705a2c9eb3e7e4"),
        (date(2025, 11, 19), "dd24953ac798c07c"),
        (datetime(2025, 11, 19, 18, 5), "3efabaf8e77a0911"),
        (datetime(2025, 11, 19, 18, 5, tzinfo=UTC), "fae8acb2d22ca7c3"),
        (Decimal("1.50"), "fefc511c9df9d733"),
        (float("nan"), "d5b592c05dc25b50"),
    ],
)
def test_ordinary_digests_are_stable(value: Any, digest: str) -> None:
    """The digest of an ordinary value is the one earlier versions persisted."""
    assert value_digest(value) == digest


def test_row_digest_is_stable() -> None:
    """A row of ordinary columns digests as before."""
    row = {"points": 27, "team": "LAL", "game_date": date(2025, 11, 19)}
    assert row_digest(row) == "5940d743f52f81c6"


_SCALARS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 1.0, 1, True, None]),
    st.integers(-3, 3),
    st.text(max_size=2),
)


@settings(max_examples=500, deadline=None)
@given(a=_SCALARS, b=_SCALARS)
def test_same_is_the_canonical_texts_equality(a: Any, b: Any) -> None:
    """``same`` (its shortcuts for plain scalars, floats' NaN and signed zeros among them)
    answers exactly as comparing the canonical texts it stands for."""
    assert same(a, b) == (canonical_text(a) == canonical_text(b))
