"""The closed loop's snapshot + journal replayed after a restart whose routes.yaml changed a
window's durations loses no window, and one that adds a timeout frees the work stuck
without it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from runtime_support import (
    GAME_DAY,
    INJURY_EVENT,
    MemorySink,
    RouterFactory,
    load,
    write_registry,
)

from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.outcomes import Inbound
from scoperouter.runtime.store import Store

T0 = 1_764_000_000.0


def _registry(tmp: Path, quiet: str, max_wait: str, fast: str) -> Path:
    """Every window (quiet, max_wait), player_game_summary's ``fast`` (both); the loop on."""
    path = write_registry(tmp, quiet=quiet, max_wait=max_wait, defaults={"run_retries": 1})
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["processors"]["player_game_summary"]["window"] = {"quiet": fast, "max_wait": fast}
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _ingest(
    dw: DurableWindows, store: Store, relations: RelationStore, raw: dict[str, Any], now: float
) -> None:
    """One event through the daemon's ingest steps (runtime/ingest.py), one transaction."""
    ev = normalize_event(raw, dw.registry)
    decisions = dw.engine.plan(ev, relations, GAME_DAY)
    runs = [(d, d.model_dump_json()) for d in decisions if d.action == "run"]
    with store.transaction():
        store.mark_seen(ev.event_id, now)
        fired = dw.accept(ev, ev.model_dump_json(exclude_defaults=True), runs, now)
        dw.persist(fired, now, datetime.fromtimestamp(now, UTC))
        dw.finish_journal()
    dw.after_commit()


def test_restart_with_shorter_quiet_loses_no_window(tmp_path: Path) -> None:
    """A restart with shorter windows sends every trigger the journal's windows held."""
    now = [T0]
    cfg1 = load(_registry(tmp_path / "a", "60s", "2m", "10s"))
    store = Store(tmp_path / "state" / "state.sqlite3", sync="normal")
    dw = DurableWindows(cfg1.registry, store, RouterOptions(as_of=GAME_DAY), lambda: now[0])
    dw.restore()
    _ingest(dw, store, cfg1.relations, INJURY_EVENT, T0)
    reached = {w.processor for w in dw.book.states()}
    assert "player_game_summary" in reached and len(reached) > 1
    now[0] = T0 + 10
    dw.fire_due(lambda: None)
    assert {t.processor for t in store.pending_triggers()} == {"player_game_summary"}
    store.close()  # SIGKILL: no snapshot taken at stop

    cfg2 = load(_registry(tmp_path / "b", "5s", "5s", "5s"))
    store = Store(tmp_path / "state" / "state.sqlite3", sync="normal")
    dw = DurableWindows(cfg2.registry, store, RouterOptions(as_of=GAME_DAY), lambda: now[0])
    dw.restore()
    now[0] = T0 + 1000
    dw.fire_due(lambda: None)
    sent = {t.processor for t in store.pending_triggers()}
    store.close()
    assert reached <= sent, f"lost at restart: {sorted(reached - sent)}"


@pytest.mark.parametrize(
    "added",
    [{"completion_timeout": "10m"}, {"barrier": {"timeout": "1h"}}],
    ids=["completion_timeout", "barrier_timeout"],
)
async def test_restart_adding_a_timeout_frees_stuck_work(
    tmp_path: Path, make_router: RouterFactory, added: dict[str, Any]
) -> None:
    """Triggers never completed and windows held by a barrier without timeout are freed by a
    restart whose routes.yaml adds completion_timeout or barrier.timeout (the documented fix)."""
    now = [T0]
    before = {"run_retries": 1, "barrier": {}}
    cfg1 = load(write_registry(tmp_path / "a", defaults=before))
    r = make_router(cfg1, MemorySink(), clock=lambda: now[0], state_dir=tmp_path)
    await r.start()
    assert (await r.submit(Inbound("test", obj=INJURY_EVENT))).ack
    for _ in range(5):
        await r.fire_due()
    assert await r.idle()
    loop = r.windows.engine.loop
    assert loop is not None and loop.barrier.held and loop.ledger.open_count
    await r.stop(timeout=2.0)

    cfg2 = load(write_registry(tmp_path / "b", defaults={**before, **added}))
    sink = MemorySink()
    r = make_router(cfg2, sink, clock=lambda: now[0], state_dir=tmp_path)
    await r.start()
    for _ in range(12):  # twelve hours on
        now[0] += 3600
        await r.fire_due()
        assert await r.idle()
    loop = r.windows.engine.loop
    assert loop is not None and not loop.barrier.held, "still held at the barrier"
    stuck = [e.trigger.processor for e in loop.ledger.entries() if e.phase == "dispatched"]
    assert "completion_timeout" not in added or not stuck, f"still waiting: {stuck}"
    assert sink.calls > 0
