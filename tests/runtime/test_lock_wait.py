"""Which failed ingest transactions count as ``lock_timeout`` (runtime/router_intake.py
``lock_wait``): PostgreSQL's StoreBusy and SQLite's busy timeout on a state file another
process holds, not other store errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from scoperouter.errors import StoreBusy
from scoperouter.runtime.router_intake import lock_wait


def _locked(tmp_path: Path) -> sqlite3.OperationalError:
    """The error a second writer gets while the first holds the write lock."""
    path = tmp_path / "state.sqlite3"
    first = sqlite3.connect(path, isolation_level=None)
    second = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        first.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as caught:
            second.execute("BEGIN IMMEDIATE")
        first.execute("ROLLBACK")
        return caught.value
    finally:
        first.close()
        second.close()


def _no_table(tmp_path: Path) -> sqlite3.OperationalError:
    """An SQLite error that is not a lock wait."""
    with pytest.raises(sqlite3.OperationalError) as caught:
        sqlite3.connect(":memory:").execute("SELECT * FROM nowhere")
    return caught.value


@pytest.mark.parametrize(
    ("make", "busy"),
    [
        (_locked, True),
        (lambda _p: StoreBusy("lock_timeout"), True),
        (_no_table, False),
        (lambda _p: OSError(28, "No space left on device"), False),
        (lambda _p: RuntimeError("boom"), False),
    ],
    ids=["sqlite_locked", "store_busy", "sqlite_other", "disk_full", "other"],
)
def test_lock_wait(tmp_path: Path, make: object, busy: bool) -> None:
    """A lock waited out is lock_timeout; any other failure stays store_error."""
    assert lock_wait(make(tmp_path)) is busy  # type: ignore[operator]
