"""state/frozen.py: the store's values built by the cheaper ``__init__`` are what the stock
frozen dataclass ``__init__`` builds (fields, defaults, equality, hash, repr, frozen)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from scoperouter.state import model
from scoperouter.state.frozen import fast_init

CLASSES = sorted(
    (
        c
        for c in vars(model).values()
        if inspect.isclass(c) and dataclasses.is_dataclass(c) and c.__module__ == model.__name__
    ),
    key=lambda c: c.__name__,
)


def stock(cls: type[Any]) -> type[Any]:
    """The oracle: the same fields in a plain ``@dataclass(frozen=True, slots=True)``."""
    spec = [
        (f.name, f.type, dataclasses.field(default=f.default))
        if f.default is not dataclasses.MISSING
        else (f.name, f.type)
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, spec, frozen=True, slots=True)


def sample(cls: type[Any], salt: int) -> list[Any]:
    """One distinct value per field (the types do not matter to ``__init__``)."""
    return [f"{f.name}-{salt}" for f in dataclasses.fields(cls)]


def fields_of(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


def test_every_value_class_has_the_cheaper_init() -> None:
    """Every dataclass of state/model.py is built by fast_init's __init__."""
    assert len(CLASSES) >= 20
    for cls in CLASSES:
        assert cls.__init__.__qualname__ == f"{cls.__name__}.__init__"
        assert "_set0" in cls.__init__.__code__.co_names or not dataclasses.fields(cls)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_positional_and_keyword_builds_equal_the_stock_init(cls: type[Any]) -> None:
    """Positional args, keyword args and the defaults give the stock class's fields, repr
    (names aside), equality and hash."""
    ref = stock(cls)
    args = sample(cls, 1)
    a, b = cls(*args), ref(*args)
    assert fields_of(a) == fields_of(b)
    assert repr(a).split("(", 1)[1] == repr(b).split("(", 1)[1]
    kw = {f.name: v for f, v in zip(dataclasses.fields(cls), args, strict=True)}
    assert cls(**kw) == a and hash(cls(**kw)) == hash(a)
    assert cls(*sample(cls, 2)) != a
    required = [f for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    assert fields_of(cls(*args[: len(required)])) == fields_of(ref(*args[: len(required)]))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_values_stay_frozen_and_replaceable(cls: type[Any]) -> None:
    """Assigning a field raises; dataclasses.replace builds a changed copy; wrong argument
    counts raise TypeError as the stock __init__ does."""
    fs = dataclasses.fields(cls)
    if not fs:
        pytest.skip("no fields")
    a = cls(*sample(cls, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(a, fs[0].name, "x")
    c = dataclasses.replace(a, **{fs[0].name: "changed"})
    assert getattr(c, fs[0].name) == "changed" and fields_of(c)[1:] == fields_of(a)[1:]
    with pytest.raises(TypeError):
        cls(*sample(cls, 1), "one too many")
    if any(f.default is dataclasses.MISSING for f in fs):
        with pytest.raises(TypeError):
            cls()


@dataclasses.dataclass
class _Plain:
    x: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Factory:
    x: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class _Post:
    x: int

    def __post_init__(self) -> None:
        pass


@pytest.mark.parametrize("cls", [_Plain, _Factory, _Post], ids=lambda c: c.__name__)
def test_unsupported_classes_are_refused(cls: type[Any]) -> None:
    """A class the cheaper __init__ would build wrongly is refused at decoration."""
    with pytest.raises(TypeError):
        fast_init(cls)
