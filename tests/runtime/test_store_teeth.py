"""State-store rules an outside mutation run found untested (issue 13, acceptance 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoperouter.runtime.housekeeping import prune
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store import Store

DAY = 86400.0


@pytest.mark.parametrize(("sync", "pragma"), [("full", 2), ("normal", 1)])
def test_synchronous_setting_is_applied(tmp_path: Path, sync: str, pragma: int) -> None:
    """Store(sync=...) sets SQLite's synchronous pragma (FULL=2, NORMAL=1)."""
    s = Store(tmp_path / "s.db", sync=sync)  # type: ignore[arg-type]
    try:
        assert s._db.execute("PRAGMA synchronous").fetchone()[0] == pragma
    finally:
        s.close()


def test_dead_triggers_outlive_the_done_retention(tmp_path: Path) -> None:
    """Housekeeping prunes done rows after done_retention and never dead rows (kept until redriven or discarded, issue 18)."""
    s = Store(tmp_path / "s.db", sync="normal")
    now = 100 * DAY
    with s.transaction():
        done = s.insert_trigger("t-done", "p", "{}", now - 3 * DAY)
        dead = s.insert_trigger("t-dead", "p", "{}", now - 3 * DAY)
        s.mark_done(done, 1, now - 3 * DAY)
        s.mark_dead(dead, 3, now - 3 * DAY, "boom")
    opts = RouterOptions(done_retention_s=1 * DAY, dead_letter_retention_s=7 * DAY)
    prune(s, opts, now)
    left = {r[0] for r in s._db.execute("SELECT trigger_id FROM triggers")}
    assert left == {"t-dead"}
    prune(s, opts, now + 500 * DAY)
    assert s._db.execute("SELECT trigger_id FROM triggers").fetchall() == [("t-dead",)]
    s.close()


@pytest.mark.parametrize("finish", ["done", "dead"])
def test_attempts_never_overwrite_a_finished_row(tmp_path: Path, finish: str) -> None:
    """A late retry count does not change a trigger already marked done or dead."""
    s = Store(tmp_path / "s.db", sync="normal")
    with s.transaction():
        row = s.insert_trigger("t", "p", "{}", 1.0)
        s.mark_attempts(row, 1)
        if finish == "done":
            s.mark_done(row, 2, 2.0)
        else:
            s.mark_dead(row, 2, 2.0, "boom")
        s.mark_attempts(row, 7)
    got = s._db.execute("SELECT status, attempts FROM triggers WHERE id = ?", (row,)).fetchone()
    assert tuple(got) == (finish, 2)
    s.close()


def test_a_reseen_event_id_takes_the_later_time(tmp_path: Path) -> None:
    """Marking an event id seen again moves its time, so the dedup horizon counts from then."""
    s = Store(tmp_path / "s.db", sync="normal")
    with s.transaction():
        s.mark_seen("e-1", 10.0)
        s.mark_seen("e-1", 100.0)
        assert s.prune_seen(50.0) == 0
    assert s.is_seen("e-1")
    s.close()
