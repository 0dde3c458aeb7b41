"""The closed loop's ledger across a restart that flips a processor's mode (docs/ledger.md,
docs/rollout.md "Flip back"): a trigger that fired live keeps its ledger entry (it is still
delivered, its run closes the entry; a re-run is sent live), one that fired in shadow gets
none (it is never sent: no run would close it, the entry would wait forever) -- also when
the restart replays the journal (a crash: no snapshot at the stop)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from runtime_support import GAME_DAY, INJURY_EVENT, load, write_registry

from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.loader import LoadedConfig
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.journal_replay import MODES_META, UNTRACKED_META
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.store import Store

T0 = 1_764_000_000.0


def config(tmp: Path, mode: str, **loop: Any) -> LoadedConfig:
    """Zero windows, every processor in ``mode``, the closed loop on."""
    return load(write_registry(tmp / mode, defaults={"mode": mode, "run_retries": 1, **loop}))


def windows(cfg: LoadedConfig, path: Path, now: list[float], shadow: bool) -> DurableWindows:
    store = Store(path, sync="normal")
    dw = DurableWindows(
        cfg.registry, store, RouterOptions(as_of=GAME_DAY, shadow=shadow), lambda: now[0]
    )
    dw.restore()
    return dw


def ingest(dw: DurableWindows, relations: RelationStore, now: float) -> list[str]:
    """The injury event through the daemon's ingest steps (one transaction); the trigger
    ids it fired."""
    ev = normalize_event(INJURY_EVENT, dw.registry)
    decisions = dw.engine.plan(ev, relations, GAME_DAY)
    runs = [(d, d.model_dump_json()) for d in decisions if d.action == "run"]
    with dw.store.transaction():
        dw.store.mark_seen(ev.event_id, now)
        fired = dw.accept(ev, ev.model_dump_json(exclude_defaults=True), runs, now)
        dw.persist(fired, now, datetime.fromtimestamp(now, UTC))
        dw.finish_journal()
    dw.after_commit()
    return [f.trigger.trigger_id for f in fired]


def fire_and_crash(
    tmp_path: Path, mode: str, **loop: Any
) -> tuple[Path, list[float], list[str], set[str | None]]:
    """Fire the stream's triggers with every processor in ``mode`` and stop as a SIGKILL
    does (no snapshot: the journal holds the firing): the store's path, the clock, the
    fired trigger ids (at least one) and the modes stored with the pending rows."""
    now = [T0]
    path = tmp_path / "state" / "state.sqlite3"
    cfg = config(tmp_path, mode, **loop)
    dw = windows(cfg, path, now, False)
    fired = ingest(dw, cfg.relations, T0)
    assert fired
    stored = {t.mode for t in dw.store.pending_triggers()}
    dw.store.close()
    return path, now, fired, stored


@pytest.mark.parametrize(
    ("before", "after", "serve_shadow", "tracked"),
    [
        ("live", "shadow", False, True),
        ("live", "live", True, True),  # serve --shadow after the restart
        ("shadow", "live", False, False),
    ],
)
def test_a_crash_restart_keeps_the_entries_of_the_mode_triggers_fired_in(
    tmp_path: Path, before: str, after: str, serve_shadow: bool, tracked: bool
) -> None:
    """After a journal replay, live-fired triggers keep their entries; shadow-fired get none."""
    path, now, fired, stored = fire_and_crash(tmp_path, before)
    assert stored == {before}

    dw = windows(config(tmp_path, after), path, now, serve_shadow)
    assert dw.journal_replayed > 0
    loop = dw.engine.loop
    assert loop is not None
    entries = {tid: loop.ledger.get(tid) for tid in fired}
    if tracked:
        assert all(e is not None and e.phase == "dispatched" for e in entries.values())
    else:
        assert entries == dict.fromkeys(fired) and loop.ledger.open_count == 0
    dw.store.close()


def test_a_rerun_of_a_live_trigger_is_sent_live_after_its_processor_became_shadow(
    tmp_path: Path,
) -> None:
    """A timed-out run of a trigger fired live is re-sent live (paged), though shadow now."""
    path, now, fired, _ = fire_and_crash(tmp_path, "live", completion_timeout="1m")

    dw = windows(config(tmp_path, "shadow", completion_timeout="1m"), path, now, False)
    now[0] = T0 + 120  # past the completion timeout: each trigger is re-run once
    started = dw.fire_due(lambda: None)
    assert started == []  # none starts as a fresh shadow trigger would
    rows = [t for t in dw.store.pending_triggers() if t.starts == 0 and t.created_at == now[0]]
    assert sorted(t.trigger_id for t in rows) == sorted(fired)
    assert {t.mode for t in rows} == {"live"}
    assert dw.take_waiting() == sorted({t.processor for t in rows})
    dw.store.close()


def as_written_before_the_upgrade(path: Path) -> None:
    """Make the store at ``path`` look written by the version before the mode was kept: no
    ``journal_modes`` nor ``journal_untracked`` meta, the pending rows without a mode."""
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM meta WHERE key IN (?, ?)", (MODES_META, UNTRACKED_META))
        db.execute("UPDATE triggers SET mode = NULL")
    db.close()


def test_first_restart_after_the_upgrade_into_shadow_opens_no_entries_for_unsent_rows(
    tmp_path: Path,
) -> None:
    """A pre-upgrade store restarted into shadow: no entries, nothing re-fired live."""
    path, now, fired, _ = fire_and_crash(tmp_path, "live", completion_timeout="1m")
    as_written_before_the_upgrade(path)

    dw = windows(config(tmp_path, "shadow", completion_timeout="1m"), path, now, False)
    assert dw.journal_replayed > 0
    loop = dw.engine.loop
    assert loop is not None
    # the NULL rows are sent by the processor's mode now (shadow): never sent, no entry
    assert {tid: loop.ledger.get(tid) for tid in fired} == dict.fromkeys(fired)
    assert loop.ledger.open_count == 0
    now[0] = T0 + 120  # past the completion timeout
    assert dw.fire_due(lambda: None) == []
    assert [t for t in dw.store.pending_triggers() if t.created_at == now[0]] == []
    assert dw.take_waiting() == []
    dw.store.close()


def test_first_restart_after_the_upgrade_into_live_opens_entries_for_the_rows_sent(
    tmp_path: Path,
) -> None:
    """A pre-upgrade store restarted into live: the rows now sent live get ledger entries."""
    path, now, fired, _ = fire_and_crash(tmp_path, "shadow")
    as_written_before_the_upgrade(path)

    dw = windows(config(tmp_path, "live"), path, now, False)
    assert dw.journal_replayed > 0
    assert {t.mode for t in dw.store.pending_triggers()} == {None}  # sent by live now
    loop = dw.engine.loop
    assert loop is not None
    entries = {tid: loop.ledger.get(tid) for tid in fired}
    assert all(e is not None and e.phase == "dispatched" for e in entries.values())
    dw.store.close()


@pytest.mark.parametrize(
    ("first", "rerun"), [("live", "live"), ("shadow", "shadow"), (None, "live")]
)
def test_a_rerun_takes_the_mode_of_the_triggers_first_attempt(
    tmp_path: Path, first: str | None, rerun: str
) -> None:
    """A ledger re-dispatch is live only when the first attempt was (an entry a version
    before opened for a trigger fired in shadow is not sent for real); unknown: live."""
    path, now, fired, _ = fire_and_crash(tmp_path, "live", completion_timeout="1m")
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE triggers SET mode = ?", (first,))
    db.close()

    dw = windows(config(tmp_path, "live", completion_timeout="1m"), path, now, False)
    now[0] = T0 + 120  # past the completion timeout: each trigger is re-run once
    dw.fire_due(lambda: None)
    rows = [t for t in dw.store.pending_triggers() if t.created_at == now[0]]
    assert sorted(t.trigger_id for t in rows) == sorted(fired)
    assert {t.mode for t in rows} == {rerun}
    dw.store.close()
