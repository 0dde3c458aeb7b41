"""The SQLite store's instance lock: of the stores opened ``exclusive`` on one file (the
daemon's open) one at a time holds it, from open to close or to the holder's death; the
next is refused naming the file and the holder; a store opened without it is never
refused nor refuses; PostgreSQL takes no lock (replicas share it)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scoperouter.state import StateStore, StoreOptions, open_state_store
from scoperouter.state.sqlite_lock import InstanceLock, StoreInUse, lock_path


def _open(location: str | Path, owner: str, exclusive: bool) -> StateStore:
    return open_state_store(location, StoreOptions(owner=owner), sync="normal", exclusive=exclusive)


@pytest.mark.parametrize(
    ("first", "close_first", "second", "refused"),
    [
        (True, False, True, True),  # two daemons
        (True, False, False, False),  # an offline command beside the daemon
        (False, False, True, False),  # a daemon starting beside an offline command
        (True, True, True, False),  # a daemon after the previous one stopped
    ],
)
def test_one_exclusive_store_at_a_time(
    tmp_path: Path, first: bool, close_first: bool, second: bool, refused: bool
) -> None:
    """A second exclusive open of a held file is refused; any other pair opens."""
    db = tmp_path / "state.db"
    a = _open(db, "rep-a", first)
    if close_first:
        a.close()
    try:
        if refused:
            with pytest.raises(StoreInUse) as err:
                _open(db, "rep-b", second)
            msg = str(err.value)
            assert str(db.resolve()) in msg and "replica rep-a" in msg and "\n" not in msg
            assert str(lock_path(db)) in msg
        else:
            b = _open(db, "rep-b", second)
            assert b.outbox_rows() == [] and b.open_windows() == []
            b.close()
    finally:
        if not close_first:
            a.close()


def test_a_killed_holder_lets_the_next_daemon_in(tmp_path: Path) -> None:
    """The kernel drops the lock of a SIGKILLed holder: the next exclusive open succeeds."""
    db = tmp_path / "state.db"
    hold = (
        "import sys; from scoperouter.state import StoreOptions, open_state_store; "
        "s = open_state_store(sys.argv[1], StoreOptions(owner='crashy'), exclusive=True); "
        "print('held', flush=True); sys.stdin.read()"
    )
    argv = [sys.executable, "-c", hold, str(db)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as p:
        try:
            assert p.stdout is not None and p.stdout.readline() == b"held\n"
            with pytest.raises(StoreInUse, match=rf"pid {p.pid} on .*, replica crashy"):
                _open(db, "rep-b", True)
        finally:
            p.kill()
            p.wait()  # reaped: its descriptors, the lock's included, are closed
    _open(db, "rep-b", True).close()


def test_a_store_that_fails_to_open_lets_the_lock_go(tmp_path: Path) -> None:
    """An exclusive open refused for another reason (a newer schema) holds no lock afterwards."""
    db = tmp_path / "state.db"
    _open(db, "rep-a", False).close()
    c = sqlite3.connect(db)
    c.execute("PRAGMA user_version = 999")
    c.close()
    with pytest.raises(RuntimeError, match="newer than this scoperouter"):
        _open(db, "rep-a", True)
    InstanceLock(db, "probe").release()  # free: taken at once


def test_postgresql_takes_no_lock(store_location: str) -> None:
    """Exclusive opens of one location: refused on SQLite, shared by replicas on PostgreSQL."""
    a = _open(store_location, "rep-a", True)
    try:
        if a.kind == "sqlite":
            with pytest.raises(StoreInUse):
                _open(store_location, "rep-b", True)
        else:
            b = _open(store_location, "rep-b", True)
            b.close()
    finally:
        a.close()
