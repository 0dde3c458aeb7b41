"""A restart replays the journal into the live run's ledger also when a parked completion
expired during a tick: the expiry moves the loop's version, so that tick is journaled."""

from __future__ import annotations

import json

from closed_loop_support import AS_OF, REL, event, registry

from scoperouter.router.completion_ref import CompletionRef, ref_to_dict
from scoperouter.router.engine import RoutingEngine
from scoperouter.router.journal_replay import JournalRow, replay_journal
from scoperouter.router.ledger_parked import ORPHAN_TTL_S


def test_parked_completion_expired_live_is_expired_in_the_replay() -> None:
    """A parked completion a live tick expired is not applied by the replay of a later alias."""
    reg = registry(run_retries=1, completion_timeout="1h")
    rows: list[JournalRow] = []
    live = RoutingEngine(reg, loop=True)
    live.journal = lambda op, now, ev, d: rows.append(
        (op, now, ev.model_dump_json() if ev else None, d.model_dump_json() if d else None)
    )
    live.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0)
    (t,) = [f.trigger for f in live.tick(10.0) if f.trigger.processor == "u1"]
    live.tick(30.0)  # u2's window: nothing else is due for an hour
    # the run reports naming the message it came in before the publish's answer is recorded
    ref = CompletionRef(outcome="success", message_id="9001", event_id="c-1")
    rows.append(("complete", 31.0, json.dumps(ref_to_dict(ref)), None))
    live.complete(ref, 31.0)
    live.tick(31.0 + ORPHAN_TTL_S + 2)  # the live router drops it: waited too long
    # the publish's answer, stamped when it came back (before that tick), written after it
    rows.append(("alias", 31.0 + ORPHAN_TTL_S - 1, "9001", t.trigger_id))
    live.alias("9001", t.trigger_id, 31.0 + ORPHAN_TTL_S - 1)
    replayed = RoutingEngine(reg, loop=True)
    replay_journal(replayed, rows)
    assert live.loop is not None and replayed.loop is not None
    phase = {e.loop.ledger.get(t.trigger_id).phase for e in (live, replayed)}  # type: ignore[union-attr]
    assert replayed.loop.snapshot() == live.loop.snapshot(), phase
