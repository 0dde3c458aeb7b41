"""Build a frozen pydantic model from values that are already valid, without validating
them again: the hot path's decisions and triggers (the planner, a fired window).

Invariant: ``values`` names every field of the model, each already of its field's type
(what validation would return unchanged); the result then equals ``cls(**values)``
field for field, with the same ``model_fields_set``, and serialises the same
(tests/planner/test_trigger_construct.py checks it for every model built this way).
``model_construct`` does the same but loops over the fields and their defaults, which
costs more than validating; this sets the four attributes pydantic's own
``model_construct`` sets, for a model without extra fields, private attributes or
``model_post_init``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__
_new = object.__new__  # BaseModel has no __new__ of its own
# every field name of a model: ``values`` names each, so its fields set is a copy of this
# (copying a set is cheaper than building one from a dict's keys)
_FIELDS: dict[type[BaseModel], frozenset[str]] = {}


def unchecked(cls: type[M], values: dict[str, Any]) -> M:
    """``cls(**values)`` for ``values`` that are already valid (see the module docstring)."""
    m = _new(cls)
    _set(m, "__dict__", values)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(cls.model_fields)
    _set(m, "__pydantic_fields_set__", set(names if len(values) == len(names) else values))
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


__all__ = ["unchecked"]
