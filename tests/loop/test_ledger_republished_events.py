"""Sequences where the unattributed rule could turn a run that processed everything into
extra runs, a dead letter or a trigger left open: the re-run's success must be heard as that
run's (an SDK dict trigger republishing its change; a success overtaking its alias record)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from closed_loop_support import D, done, registry, trig

from pubsub_fakes import FakeClient
from scoperouter.messages.normalize import parse_event_bytes
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.loop_params import LoopParams
from scoperouter.runtime.loop_runtime import completion_of
from scoperouter.runtime.outcomes import Inbound
from scoperouter.sdk import ChangeDetector, CompletionPublisher, Scope, parse_trigger

REGISTRY = registry()
TRIGGER = {
    "trigger_id": "t-1",
    "processor": "p",
    "game_date": D.isoformat(),
    "scope": "entities",
    "entity_type": "player",
    "entity_ids": ["a", "b"],
}


def _detector(day: date) -> ChangeDetector:
    det = ChangeDetector("pre.p", "player")
    det.observe(day, before={"a": {"x": 1}}, after={"a": {"x": 2}})
    return det


class _Router:
    """The daemon's path for the processor's messages: an event id seen before is a
    duplicate and reaches no ledger (runtime/ingest.py); the rest go to the ledger."""

    def __init__(self, timeout: float | None) -> None:
        self.book = LedgerBook(lambda _p: LoopParams(2, timeout, None, backoff_base_s=10.0))
        self.seen: set[str] = set()
        self.n = 0

    def hear(self, client: FakeClient, now: float) -> None:
        for data, attrs in client.sent:
            self.n += 1
            mid = f"in-{self.n}"
            inbound = Inbound(
                "pubsub", data=data, message_id=mid, trigger_id=attrs.get("trigger_id")
            )
            try:
                parsed: Any = parse_event_bytes(data, REGISTRY, message_id=mid)
            except Exception as exc:  # a bare report is not an event
                parsed = exc
            ref = completion_of(inbound, parsed, REGISTRY)
            assert ref is not None
            eid = json.loads(data).get("event_id")
            if "source" in json.loads(data):
                if eid in self.seen:
                    continue  # a duplicate event: not applied
                self.seen.add(eid)
            self.book.complete(ref, now)
        client.sent.clear()


def _run(router: _Router, scope: Scope, what: str, now: float) -> None:
    """One run of t-1 by an SDK processor: ``failed`` (a report), ``partial`` (a report of b
    missed, then its change events saying success), ``ok`` (its change events; a re-run
    finds nothing new and republishes the trigger's change, as it must)."""
    client = FakeClient()
    pub = CompletionPublisher("done", source="pre.p", project="x", client=client)
    if what == "failed":
        pub.report(scope, "failed", error="boom")
    elif what == "partial":
        pub.report(scope, "partial", missed_entities=["b"])
        pub.publish_detected(_detector(D), scope)
    else:
        pub.publish_detected(_detector(D), scope)
    router.hear(client, now)


@pytest.mark.parametrize("first", ["failed", "partial"])
@pytest.mark.parametrize("timeout", [None, 50.0], ids=["no_timeout", "timeout"])
def test_a_dict_trigger_rerun_republishing_its_change_closes_after_one_failure(
    first: str, timeout: float | None
) -> None:
    """Attempt 1 fails (or misses b), the re-runs succeed republishing the change: the trigger closes within run_retries 2."""
    router = _Router(timeout)
    router.book.open(trig(), 0.0)
    scope = parse_trigger(TRIGGER)  # a trigger passed as a dict: no message id
    assert scope.message_id is None
    _run(router, scope, first, 1.0)
    for _tick in range(8):  # each timer as it comes due; every re-run succeeds at once
        at = router.book.next_deadline()
        if at is None:
            break
        for _r in router.book.due(at):  # each run parses the trigger it is given
            _run(router, parse_trigger(TRIGGER), "ok", at + 1.0)
    e = router.book.get("t-1")
    assert e is not None
    assert e.phase == "succeeded", (e.phase, e.attempt, [a[1] for a in e.history])
    # closed by a re-run's success (attempt 1's change events must not close it: b was missed)
    assert e.history[-1][1:3] == ("success", e.attempt) and e.attempt >= 2, e.history[-1]


@pytest.mark.parametrize("retries", [1, 2])
def test_a_rerun_success_overtaking_its_alias_record_closes_once_recorded(retries: int) -> None:
    """An SDK processor on a Pub/Sub target names trigger and attempt: attempt 1 failed, attempt 2's success overtakes the record of its message id; once recorded, the trigger is closed, nothing more sent."""
    book = LedgerBook(lambda _p: LoopParams(retries, None, None, backoff_base_s=10.0))
    book.open(trig(), 0.0)
    book.alias("9001", "t-1", 0.5)
    book.complete(done(trig(), "failed", message_id="9001", event_id="rep-1"), 1.0)
    (r,) = book.due(100.0)
    assert r.attempt == 2
    book.complete(done(trig(), "success", message_id="9002", event_id="ev-2"), 100.1)
    book.alias("9002", "t-1", 100.2)  # the publish's answer, recorded milliseconds later
    assert book.due(10_000.0) == []
    e = book.get("t-1")
    assert e is not None
    assert (e.phase, e.attempt) == ("succeeded", 2), (e.phase, [a[1] for a in e.history])
