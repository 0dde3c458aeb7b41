"""A completion that names its trigger's Pub/Sub message id before the router has recorded
that id (its processor ran before the publish's answer came back) closes the trigger when
the id is recorded, also across a crash in between (the journal replays both in order)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from runtime_support import GAME_DAY, INJURY_EVENT, MemorySink, RouterFactory, load, write_registry

from scoperouter.messages.normalize import normalize_event
from scoperouter.processor_registry.relations import RelationStore
from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_parked import ORPHAN_TTL_S
from scoperouter.runtime.durable_windows import DurableWindows
from scoperouter.runtime.marks import Alias
from scoperouter.runtime.options import RouterOptions
from scoperouter.runtime.router import Inbound
from scoperouter.runtime.store import Store

T0 = 1_764_000_000.0


def _open(tmp: Path, now: list[float]) -> tuple[DurableWindows, Store, RelationStore]:
    cfg = load(write_registry(tmp / "cfg", quiet="0s", max_wait="0s", defaults={"run_retries": 1}))
    store = Store(tmp / "state" / "state.sqlite3", sync="normal")
    dw = DurableWindows(cfg.registry, store, RouterOptions(as_of=GAME_DAY), lambda: now[0])
    dw.restore()
    return dw, store, cfg.relations


@pytest.mark.parametrize("crash_between", [False, True])
def test_completion_before_its_alias_closes_the_trigger(
    tmp_path: Path, crash_between: bool
) -> None:
    """complete(message id) then alias(message id): the trigger closes, with or without a crash between."""
    now = [T0]
    dw, store, relations = _open(tmp_path, now)
    ev = normalize_event(INJURY_EVENT, dw.registry)
    planned = dw.engine.plan(ev, relations, GAME_DAY)
    runs = [(d, d.model_dump_json()) for d in planned if d.action == "run"]
    with store.transaction():
        store.mark_seen(ev.event_id, now[0])
        fired = dw.accept(ev, ev.model_dump_json(exclude_defaults=True), runs, now[0])
        dw.persist(fired, now[0], datetime.fromtimestamp(now[0], UTC))
        dw.finish_journal()
    dw.after_commit()
    now[0] = T0 + 1
    dw.fire_due(lambda: None)
    trigger = store.pending_triggers()[0]
    assert dw.engine.loop is not None
    opened = dw.engine.loop.ledger.get(trigger.trigger_id)
    assert opened is not None and opened.phase == "dispatched"

    with store.transaction():
        dw.complete(CompletionRef(outcome="success", message_id="9001"), T0 + 2)
        dw.finish_journal()
    dw.after_commit()
    if crash_between:
        store.close()  # SIGKILL: no snapshot at stop; the journal holds the completion
        dw, store, _ = _open(tmp_path, now)
    with store.transaction():
        dw.alias(Alias(trigger.trigger_id, "9001", T0 + 3))
        dw.finish_journal()
    dw.after_commit()
    assert dw.engine.loop is not None
    entry = dw.engine.loop.ledger.get(trigger.trigger_id)
    assert entry is not None and entry.phase == "succeeded"
    store.close()


def _total(r, name: str) -> float:  # type: ignore[no-untyped-def]
    return sum(
        s.value for fam in r.metrics.registry.collect() for s in fam.samples if s.name == name
    )


async def test_parked_completions_are_counted(tmp_path: Path, make_router: RouterFactory) -> None:
    """/metrics shows completions waiting for their message id, and those that never matched."""
    cfg = load(write_registry(tmp_path, defaults={"run_retries": 1}))
    now = [T0]
    r = make_router(cfg, MemorySink(), clock=lambda: now[0])
    await r.start()

    async def report(mid: str) -> None:
        body = {"status": "success", "trigger_message_id": mid, "event_id": f"c-{mid}"}
        out = await r.submit(Inbound("test", data=json.dumps(body).encode()))
        assert out.status == "accepted"
        assert await r.idle()

    await report("9001")
    assert _total(r, "scoperouter_completions_parked") == 1
    assert _total(r, "scoperouter_completions_unmatched_total") == 0
    now[0] += ORPHAN_TTL_S + 1
    await report("9002")  # parks the second; the first has waited too long
    assert _total(r, "scoperouter_completions_parked") == 1
    assert _total(r, "scoperouter_completions_unmatched_total") == 1
