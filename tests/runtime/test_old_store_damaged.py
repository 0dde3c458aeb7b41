"""serve's snapshot + journal store (``state.sqlite3``) whose window snapshot or journal it
cannot read -- another version, a malformed ledger entry, a snapshot that is not JSON, a
bad journal row -- stops the start with one line naming the file ("state database PATH is
not usable: ..."), and the router's stop then writes nothing over it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from runtime_support import RouterFactory, load, write_registry

from scoperouter.errors import ConfigError


def _snap(db: sqlite3.Connection, change: Callable[[dict], None]) -> None:
    snap = json.loads(db.execute("SELECT snapshot FROM window_snapshot").fetchone()[0])
    change(snap)
    db.execute("UPDATE window_snapshot SET snapshot = ?", (json.dumps(snap),))


def _journal(event: str, decision: str | None) -> Callable[[sqlite3.Connection], None]:
    def damage(db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO window_journal(op, now, event, decision) VALUES ('add', 1.0, ?, ?)",
            (event, decision),
        )

    return damage


DAMAGE: dict[str, tuple[Callable[[sqlite3.Connection], None], str]] = {
    "snapshot_version_99": (
        lambda db: _snap(db, lambda s: s.update(version=99)),
        "unsupported window snapshot",
    ),
    "ledger_entry_malformed": (
        lambda db: _snap(db, lambda s: s["loop"]["ledger"].update(entries=[{"phase": "open"}])),
        "malformed ledger entry",
    ),
    "ledger_history_item_short": (
        lambda db: _snap(
            db, lambda s: s["loop"]["ledger"].update(entries=[{"phase": "dead", "history": [[1]]}])
        ),
        "malformed ledger entry",
    ),
    "loop_version_99": (
        lambda db: _snap(db, lambda s: s["loop"].update(version=99)),
        "unsupported loop snapshot",
    ),
    "aliases_a_list": (
        lambda db: _snap(db, lambda s: s["loop"]["ledger"].update(aliases=[1])),
        "",
    ),
    "snapshot_not_json": (
        lambda db: db.execute("UPDATE window_snapshot SET snapshot = '{trunc'"),
        "window snapshot is not JSON",
    ),
    "journal_add_without_decision": (_journal("{bad", None), "journal row 1"),
    "journal_event_not_json": (_journal("{bad", "{}"), "journal row 1"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
async def test_damaged_snapshot_or_journal_stops_the_start(
    make_router: RouterFactory, tmp_path: Path, name: str
) -> None:
    """One ConfigError line naming state.sqlite3; the damaged rows are left as they were."""
    damage, needle = DAMAGE[name]
    cfg = load(write_registry(tmp_path / "cfg", defaults={"run_retries": 1}))  # closed loop
    state = tmp_path / "state"
    first = make_router(cfg, state_dir=state)
    await first.start()
    await first.stop(timeout=1.0)
    path = state / "state.sqlite3"
    db = sqlite3.connect(path)
    damage(db)
    db.commit()
    before = db.execute("SELECT snapshot FROM window_snapshot").fetchall()
    journal = db.execute("SELECT * FROM window_journal").fetchall()
    db.close()
    router = make_router(cfg, state_dir=state)
    with pytest.raises(ConfigError) as caught:
        await router.start()
    await router.stop(timeout=1.0)
    (issue,) = caught.value.issues
    msg = issue.format()
    assert msg.startswith(f"error: state database {path} is not usable: "), msg
    assert needle in msg and "\n" not in msg, msg
    db = sqlite3.connect(path)
    assert db.execute("SELECT snapshot FROM window_snapshot").fetchall() == before
    assert db.execute("SELECT * FROM window_journal").fetchall() == journal
    db.close()
