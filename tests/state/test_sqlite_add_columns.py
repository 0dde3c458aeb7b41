"""Opening a SQLite file written before a column, by two processes at once: the second to
add the column (it saw it missing before the first added it) opens all the same."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from scoperouter.backfill.store import BackfillStore
from scoperouter.runtime.store import Store
from scoperouter.state import sqlite_schema


def _race(monkeypatch: pytest.MonkeyPatch, path: Path, table: str, columns: list[str]) -> None:
    """The next column check of ``table`` sees it as it was; then another process (a
    second connection) adds ``columns`` before this one does."""
    real = sqlite_schema.table_columns

    def stale(db: sqlite3.Connection, name: str) -> set[str]:
        seen = real(db, name)
        if name == table:
            other = sqlite3.connect(str(path), isolation_level=None)
            for c in columns:
                other.execute(f"ALTER TABLE {table} ADD COLUMN {c} TEXT")
            other.close()
        return seen

    monkeypatch.setattr(sqlite_schema, "table_columns", stale)


def _drop(path: Path, table: str, *columns: str) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    for c in columns:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {c}")
    db.close()


def _columns(path: Path, table: str) -> set[str]:
    db = sqlite3.connect(str(path))
    try:
        return {str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")}
    finally:
        db.close()


@pytest.mark.parametrize("which", ["backfill", "runtime"])
def test_a_column_added_by_another_process_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    """The backfill store's ``backfill_runs.mode`` / the runtime store's ``triggers.mode``,
    added by another process between this one's check and its ALTER: the open succeeds."""
    path = tmp_path / "s.sqlite"
    opener: Callable[[Path], object]
    if which == "backfill":
        BackfillStore(path).close()
        table, opener = "backfill_runs", BackfillStore
    else:
        Store(path).close()
        table, opener = "triggers", Store
    _drop(path, table, "mode")
    assert "mode" not in _columns(path, table)
    _race(monkeypatch, path, table, ["mode"])
    store = opener(path)
    store.close()  # type: ignore[attr-defined]
    assert "mode" in _columns(path, table)
