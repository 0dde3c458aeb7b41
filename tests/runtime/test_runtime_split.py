"""The snapshot + journal store was split by job (a pure move): every moved name is still
importable from its old module as the very same object."""

from __future__ import annotations

import importlib

import pytest

MOVED = [
    ("scoperouter.runtime.store", "scoperouter.runtime.store_schema", "SyncMode"),
    ("scoperouter.runtime.store", "scoperouter.runtime.store_schema", "PendingTrigger"),
    ("scoperouter.runtime.store", "scoperouter.runtime.store_schema", "JournalEntry"),
    ("scoperouter.runtime.store", "scoperouter.runtime.store_schema", "DeadLetter"),
]


@pytest.mark.parametrize(("old", "new", "name"), MOVED)
def test_moved_name_is_the_same_object_in_its_old_module(old: str, new: str, name: str) -> None:
    """A moved name imported from its old module is the object its new module defines."""
    moved = getattr(importlib.import_module(new), name)
    assert getattr(importlib.import_module(old), name) is moved
    assert name in importlib.import_module(old).__all__
