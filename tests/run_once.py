"""A session fixture's value computed once per test run, not once per pytest-xdist worker
that asks for it (pytest-xdist's how-to "Making session-scoped fixtures execute only
once", with fcntl's lock for its FileLock): the first worker to ask computes it and writes
it, pickled, to the run's temporary directory shared by the workers; a worker asking later
waits for that and reads it. In one process, pytest's own session cache is enough: it is
computed. A computation that fails leaves no file: the next worker to ask computes it.

Invariant: the value a worker reads is the one another computed in the same run (the
run's directory is new each run); what cannot be pickled is taken out by ``pack`` and put
back by ``unpack``."""

from __future__ import annotations

import fcntl
import os
import pickle
from collections.abc import Callable
from typing import TypeVar, cast

import pytest

T = TypeVar("T")


def computed_once(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    compute: Callable[[], T],
    pack: Callable[[T], object] | None = None,
    unpack: Callable[[object], T] | None = None,
) -> T:
    """``compute()``, or the value another worker of this run computed under ``name``
    (``pack``, ``unpack``: around the pickling; none: the value itself)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return compute()
    shared = tmp_path_factory.getbasetemp().parent  # the run's, above each worker's
    path = shared / f"{name}.pickle"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if path.is_file():
            packed = pickle.loads(path.read_bytes())
            return unpack(packed) if unpack else cast(T, packed)
        value = compute()
        path.write_bytes(pickle.dumps(pack(value) if pack else value))
        return value
