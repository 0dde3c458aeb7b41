"""A cheaper ``__init__`` for the frozen, slotted dataclasses of the state thread's hot path
(windows, contributions, outbox items, marks: several per event).

Invariant: the class stays the same frozen dataclass -- same fields, defaults, order,
equality, hash, repr, and assigning a field still raises ``FrozenInstanceError``; only
``__init__`` is replaced, by one that stores each argument through its slot's member
descriptor. A frozen dataclass's own ``__init__`` calls ``object.__setattr__`` by a global
and attribute lookup per field, which ends in that same descriptor (a 13-field window:
~1.2 -> ~0.65 us; tests/state/test_frozen_init.py checks it builds what the stock one
builds).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

_C = TypeVar("_C", bound=type[Any])


def fast_init(cls: _C) -> _C:
    """Give ``cls`` (a ``@dataclass(frozen=True, slots=True)`` class with plain or no
    defaults, no ``default_factory``, no ``__post_init__``, no ``InitVar``) the cheaper
    ``__init__``; returns ``cls``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: __post_init__ is not supported")
    ns: dict[str, Any] = {}
    args: list[str] = []
    body: list[str] = []
    for i, f in enumerate(dataclasses.fields(cls)):
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain init fields are supported")
        ns[f"_set{i}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            ns[f"_default{i}"] = f.default
            args.append(f"{f.name}=_default{i}")
        body.append(f"    _set{i}(self, {f.name})\n")
    src = f"def __init__(self, {', '.join(args)}) -> None:\n" + ("".join(body) or "    pass\n")
    exec(src, ns)  # the same technique as dataclasses' own generated __init__
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls
