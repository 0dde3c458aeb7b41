"""A restart that changes a processor's granularity (a rollback to ``granularity: date``)
re-runs its open and dead-lettered triggers as the full-date trigger: a new id (a changed
scope is a changed trigger), the old id still naming the entry."""

from __future__ import annotations

from typing import Any

import pytest
from closed_loop_support import AS_OF, REL, D, done, event, registry

from scoperouter.router.engine import RoutingEngine
from scoperouter.router.window_trigger import trigger_id

FULL_DATE = trigger_id("u1", D, "date", None, ("e1",))


def _u1_sent(phase: str) -> tuple[RoutingEngine, Any]:
    """u1's player trigger sent at 10 s, then left ``phase``: dispatched (no completion),
    backoff (failed at 20 s, a re-run due) or dead (failed with run_retries 0)."""
    retries = 0 if phase == "dead" else 1
    e = RoutingEngine(registry(None, run_retries=retries, completion_timeout="10m"), loop=True)
    e.receive(event("e1", "raw.a", "x"), REL, AS_OF, 0.0)
    [u1] = [f.trigger for f in e.tick(10.0) if f.trigger.processor == "u1"]
    assert u1.scope == "entities"
    if phase != "dispatched":
        e.complete(done(u1, "failed"), 20.0)
    assert e.loop is not None and e.loop.ledger.get(u1.trigger_id).phase == phase
    return e, u1


@pytest.mark.parametrize("phase", ["dispatched", "backoff", "dead"])
@pytest.mark.parametrize(
    ("grain", "reason"),
    [("date", "date_granularity"), ("team", "unmapped_entity_type"), ("player", None)],
)
def test_entry_takes_the_granularity_now(phase: str, grain: str, reason: str | None) -> None:
    """The entry's trigger (what a re-run or a redrive sends) is full date under the new
    id, or unchanged when the processor still takes its ids; the old id names it."""
    e, u1 = _u1_sent(phase)
    reg = registry(None, grains={"u1": grain}, run_retries=0 if phase == "dead" else 1,
                   completion_timeout="10m")  # fmt: skip
    r = e.under(reg, loop=True)
    assert r.loop is not None
    entry = r.loop.ledger.get(u1.trigger_id)
    assert entry is not None and entry.phase == phase
    if reason is None:
        assert entry.trigger == u1
        return
    t = entry.trigger
    assert (t.trigger_id, t.scope, t.entity_ids, t.entity_type, t.reason) == (
        FULL_DATE, "date", None, None, reason,
    )  # fmt: skip
    assert r.loop.ledger.get(FULL_DATE) == entry
    # the same entry after one more restart (the alias is in the snapshot)
    again = RoutingEngine.restore(reg, r.snapshot(), loop=True)
    assert again.loop is not None and again.loop.ledger.get(u1.trigger_id) == entry


@pytest.mark.parametrize("phase", ["dispatched", "backoff", "dead"])
def test_rerun_after_rollback_is_full_date(phase: str) -> None:
    """The re-run (after a timeout or a failure) or the redrive sends the full-date trigger."""
    e, u1 = _u1_sent(phase)
    reg = registry(None, grains={"u1": "date"}, run_retries=0 if phase == "dead" else 1,
                   completion_timeout="10m")  # fmt: skip
    r = e.under(reg, loop=True)
    assert r.loop is not None
    if phase == "dead":
        sent = [x.trigger for x in r.loop.redrive([u1.trigger_id], 30.0)]
    else:
        sent = [f.trigger for f in r.tick(700.0) + r.tick(2000.0) if f.trigger.processor == "u1"]
    assert [(t.trigger_id, t.scope) for t in sent] == [(FULL_DATE, "date")]


def test_completion_of_the_run_out_closes_it() -> None:
    """The entity run already out when the processor was rolled back still closes its entry
    when it completes naming the old id."""
    e, u1 = _u1_sent("dispatched")
    r = e.under(registry(None, grains={"u1": "date"}, run_retries=1), loop=True)
    r.complete(done(u1), 30.0)
    assert r.loop is not None and r.loop.ledger.get(FULL_DATE).phase == "succeeded"
