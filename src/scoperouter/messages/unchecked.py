"""Build a frozen pydantic model from values that are already valid, without validating
them again: the hot path's decisions and triggers (the planner, a fired window).

Invariant: ``values`` names every field of the model, each already of its field's type
(what validation would return unchanged); the result then equals ``cls(**values)``
field for field, with the same ``model_fields_set``, and serialises the same
(tests/planner/test_trigger_construct.py checks it for every model built this way).
``model_construct`` does the same but loops over the fields and their defaults, which
costs more than validating; this sets the four attributes pydantic's own
``model_construct`` sets, for a model without extra fields, private attributes or
``model_post_init``. It stores them through ``BaseModel``'s slot descriptors, as
``object.__setattr__`` ends up doing after a generic attribute lookup per call (~1.0 ->
~0.36 us a model; a decision and a trigger per event on the state thread, an event per
message on the event loop).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_new = object.__new__  # BaseModel has no __new__ of its own
# the stores behind the four attributes: BaseModel's ``__slots__`` (its subclasses add none)
_SLOTS = BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__
_set_fields_set = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__
# every field name of a model: ``values`` names each, so its fields set is a copy of this
# (copying a set is cheaper than building one from a dict's keys)
_FIELDS: dict[type[BaseModel], frozenset[str]] = {}


def unchecked(cls: type[M], values: dict[str, Any]) -> M:
    """``cls(**values)`` for ``values`` that are already valid (see the module docstring)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = _fields(cls)
    m = _new(cls)
    _set_dict(m, values)
    _set_fields_set(m, set(names if len(values) == len(names) else values))
    _set_extra(m, None)
    _set_private(m, None)
    return m


def _fields(cls: type[BaseModel]) -> frozenset[str]:
    """``cls``'s field names, once it is known that its instances keep the four attributes
    in ``BaseModel``'s slots (no subclass redefines them)."""
    for name in (
        "__dict__",
        "__pydantic_fields_set__",
        "__pydantic_extra__",
        "__pydantic_private__",
    ):
        owner = next(k for k in cls.__mro__ if name in k.__dict__)
        if owner is not BaseModel:
            raise TypeError(f"{cls.__name__}: {name} is not BaseModel's slot")
    return frozenset(cls.model_fields)


__all__ = ["unchecked"]
