"""messages/unchecked.py: a model built without validation, through BaseModel's slots,
equals the validated one; a model class that keeps those attributes elsewhere is refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from scoperouter.messages.unchecked import unchecked


class Small(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    ids: tuple[str, ...] | None = None
    n: int = 0


@pytest.mark.parametrize(
    "values",
    [
        {"name": "a", "ids": ("x", "y"), "n": 3},
        {"name": "b", "ids": None, "n": 0},  # the defaults' values, named
    ],
)
def test_unchecked_equals_the_validated_model(values: dict[str, Any]) -> None:
    """Same fields, fields set, extra and private attributes and JSON as ``cls(**values)``
    for values naming every field in field order (the hot path's builders)."""
    ref = Small(**values)
    got = unchecked(Small, dict(values))
    assert got == ref and got.model_dump_json() == ref.model_dump_json()
    assert got.model_fields_set == ref.model_fields_set == set(Small.model_fields)
    assert got.__pydantic_extra__ is None and got.__pydantic_private__ is None


def test_a_model_keeping_an_attribute_elsewhere_is_refused() -> None:
    """A class that puts one of the four attributes outside BaseModel's slots raises
    TypeError instead of being built through a slot it does not use."""

    class Odd(BaseModel):
        name: str

    type.__setattr__(Odd, "__pydantic_extra__", property(lambda _self: None))
    with pytest.raises(TypeError, match="__pydantic_extra__"):
        unchecked(Odd, {"name": "x"})
