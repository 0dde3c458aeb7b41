"""``scoperouter outbox list|redrive|discard`` on a state dir whose ``state.sqlite3`` is
damaged (not SQLite, truncated, empty, another program's database): exit 1 with one line
``state database PATH is not usable: ...`` -- never a traceback -- and the file is left
byte for byte as it was (the command never creates or initialises a store)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from scoperouter.cli import main
from scoperouter.runtime.store import Store


def _garbage(p: Path) -> None:
    p.write_text("hello this is not sqlite\n" * 100)


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _foreign(p: Path) -> None:
    db = sqlite3.connect(p)
    db.execute("CREATE TABLE x(a)")
    db.commit()
    db.close()


def _truncated(p: Path) -> None:
    store = Store(p)
    with store.transaction():
        for n in range(300):
            store.insert_trigger(f"t{n}", "proc", "x" * 400, 1.0)
    store.close()
    for side in (p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
        side.unlink(missing_ok=True)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage",
    [_garbage, _empty, _foreign, _truncated],
    ids=["not_sqlite", "empty", "foreign", "truncated"],
)
@pytest.mark.parametrize("action", ["list", "redrive", "discard"])
def test_damaged_old_store_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], None],
    action: str,
) -> None:
    """Exit 1, one line naming state.sqlite3; the file unchanged."""
    path = tmp_path / "state.sqlite3"
    damage(path)
    before = path.read_bytes()
    rc = main(["outbox", action, "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert err.startswith(f"error: state database {path} is not usable: "), err
    assert len(err.splitlines()) == 1, err
    assert path.read_bytes() == before
