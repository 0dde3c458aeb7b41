"""The closed loop against a brute-force model of the runs it sends: every dispatch is a run
that processes its trigger's ids (all, all but some -- ``partial`` --, or none), whose
messages arrive in any order, more than once, naming the trigger by its id, by the Pub/Sub
message id the dispatcher records later (an alias, maybe after the completion: parked), or
by both (the SDK: the trigger id says which trigger, the message id which attempt); the
router crashes and replays its journal at any point.

A run whose report named missed ids or a failure may also send a change event saying
success after it (a producer outside the SDK, out-of-order delivery), however it names
itself: it must cancel no re-run -- stale when it names the attempt, and when it names none
(only the trigger id, or a message id not recorded yet) the ledger must not trust it either
while it may be a failed run's. A partial run's may also come before its report. The
assumptions (docs/ledger.md): such a run sends at most one message saying success
(redeliveries aside: they keep its event id), so once the successes naming no attempt
outnumber the failure reports one of them is a run's that processed everything; and a run
naming no attempt sends no more of them once an operator redrove its trigger (a redrive
starts afresh).

Properties: a trigger the ledger closes had every id of its scope processed by some run; the
journal replayed after a crash rebuilds the live ledger exactly; once the runs stop failing
the loop drains (nothing re-run forever, nothing held or open)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from closed_loop_support import AS_OF, REL, event, registry
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scoperouter.router.completion_ref import CompletionRef, ref_to_dict
from scoperouter.router.engine import Fired, RoutingEngine
from scoperouter.router.journal_replay import JournalRow, replay_journal

UNIVERSE = ("x", "y", "z")  # every player on the date: the scope of a full-date trigger
REGS = {
    "retries0": registry(run_retries=0, completion_timeout="5m"),
    "retries1": registry(run_retries=1, completion_timeout="5m"),
    "barrier": registry({"timeout": "10m"}, run_retries=2, completion_timeout="5m"),
}
SOURCES = ("raw.a", "an.u1", "an.u2", "pre.p")


@dataclass
class Run:
    """One dispatch of a trigger: what it processes once it has a fate."""

    trigger_id: str
    scope: frozenset[str]
    message_id: str
    fate: tuple[str, frozenset[str]] | None = None  # (outcome, missed)
    sent: list[str] = field(default_factory=list)  # event ids of its messages
    # a partial run whose change events say success (production's processors) before its
    # report names the missed ids; after the report, only redeliveries
    mixed: bool = False
    naming: str = "trigger"  # its messages name: trigger (id) | message (id) | both
    reported: bool = False
    quiet: bool = False  # its trigger was redriven since its report: no more stale successes
    said_success: bool = False  # a partial or failed run says success in one message at most
    outcomes: dict[str, str] = field(default_factory=dict)  # event id -> the status it says


class Model:
    """The live engine, the daemon's journal of its inputs, and the runs it sent."""

    def __init__(self, kind: str) -> None:
        self.reg = REGS[kind]
        self.rows: list[JournalRow] = []
        self.base: dict[str, Any] | None = None  # the last snapshot (compaction)
        self.engine = self._new(RoutingEngine(self.reg, loop=True))
        self.now = 0.0
        self.runs: list[Run] = []
        self.pending_alias: list[tuple[str, str, float]] = []
        self.processed: dict[str, set[str]] = {}
        self.scope: dict[str, frozenset[str]] = {}
        self.n = 0

    def _new(self, e: RoutingEngine) -> RoutingEngine:
        e.journal = lambda op, now, ev, d: self.rows.append(
            (op, now, ev.model_dump_json() if ev else None, d.model_dump_json() if d else None)
        )
        return e

    def sent(self, fired: list[Fired]) -> None:
        for f in fired:
            self.n += 1
            t = f.trigger
            scope = frozenset(t.entity_ids) if t.entity_ids is not None else frozenset(UNIVERSE)
            self.scope.setdefault(t.trigger_id, scope)
            self.runs.append(Run(t.trigger_id, scope, f"m{self.n}"))
            # the publish's answer: recorded at the time it came back, written later
            self.pending_alias.append((f"m{self.n}", t.trigger_id, self.now))

    def complete(self, ref: CompletionRef) -> None:
        self.rows.append(("complete", self.now, json.dumps(ref_to_dict(ref)), None))
        self.engine.complete(ref, self.now)

    def alias(self, i: int) -> None:
        mid, tid, at = self.pending_alias.pop(i % len(self.pending_alias))
        self.rows.append(("alias", at, mid, tid))
        self.engine.alias(mid, tid, at)

    def report(self, run: Run, pick: int, naming: str, redeliver: bool) -> None:
        if run.fate is None:
            outcome = ("success", "partial", "partial", "failed")[pick % 4]
            missed = frozenset(i for k, i in enumerate(sorted(run.scope)) if pick >> (2 + k) & 1)
            if outcome == "partial" and not missed:
                outcome = "success"
            run.fate = (outcome, missed if outcome == "partial" else frozenset())
            run.naming = naming  # all messages of a run name it the same way
            # a run whose messages say success besides its report: a partial one (before
            # the report and after it), a failed one (after the report only: before it, it
            # would be a lie that closes)
            run.mixed = outcome in ("partial", "failed") and bool(pick >> 5 & 1)
            done = {"success": run.scope, "partial": run.scope - missed, "failed": frozenset()}
            self.processed.setdefault(run.trigger_id, set()).update(done[outcome])
        outcome, missed = run.fate
        if redeliver and run.sent:
            eid = run.sent[pick % len(run.sent)]
            outcome = run.outcomes[eid]
        else:
            eid = f"{run.message_id}-{len(run.sent)}"
            run.sent.append(eid)
            if run.mixed and not pick & 1 and not run.said_success:
                if not run.reported and run.fate[0] == "partial":
                    outcome = "success"  # a change event, before the run's report
                elif run.reported and not run.quiet:
                    outcome = "success"  # a stale one, after it
                run.said_success = outcome == "success"
            run.reported = run.reported or outcome == run.fate[0]
            run.outcomes[eid] = outcome
        ref = CompletionRef(
            outcome=outcome,  # type: ignore[arg-type]
            trigger_id=None if run.naming == "message" else run.trigger_id,
            message_id=None if run.naming == "trigger" else run.message_id,
            missed=tuple(sorted(missed)) if outcome == "partial" else (),
            event_id=eid,
        )
        self.complete(ref)

    def redrive(self) -> None:
        """``deadletters redrive`` of every dead letter: a request, journaled as the daemon does."""
        loop = self.engine.loop
        assert loop is not None
        req = {"id": f"q{self.n}", "op": "redrive"}
        dead = [e.trigger_id for e in loop.ledger.dead_letters()]
        req["trigger_ids"] = dead  # type: ignore[assignment]
        pending = {mid for mid, _tid, _at in self.pending_alias}
        for r in self.runs:
            # a redrive starts afresh: a run that reported before it, naming no attempt the
            # ledger knows (no message id, or one not recorded yet), sends no stale success
            unnamed = r.naming == "trigger" or (r.naming == "both" and r.message_id in pending)
            if r.trigger_id in dead and r.reported and unnamed:
                r.quiet = True
        self.rows.append(("request", self.now, json.dumps(req), None))
        got = loop.request(req, self.now)
        self.sent([Fired(r.trigger, r.at, r.attempt) for r in got])

    def tick(self) -> None:
        self.sent(self.engine.tick(self.now))

    def replayed(self) -> RoutingEngine:
        """What a restart rebuilds: the last snapshot and the journal since."""
        e = (
            RoutingEngine.restore(self.reg, self.base, loop=True)
            if self.base is not None
            else RoutingEngine(self.reg, loop=True)
        )
        replay_journal(e, self.rows)
        return e

    def compact(self) -> None:
        self.base = self.engine.snapshot()
        self.rows = []
        self.engine = self._new(RoutingEngine.restore(self.reg, self.base, loop=True))


def _ledger(e: RoutingEngine) -> Any:
    assert e.loop is not None
    return e.loop.snapshot()


OPS = ("event", "event", "report", "report", "report", "report", "alias", "alias", "tick")
step = st.tuples(
    st.sampled_from((*OPS, "crash", "compact", "redrive")),
    st.integers(0, 63),
    st.integers(0, 63),
    st.sampled_from(("trigger", "message", "both")),
    st.booleans(),
    st.sampled_from((1.0, 1.0, 5.0, 5.0, 20.0, 20.0, 45.0, 90.0, 200.0, 650.0)),
)


def _drive(kind: str, steps: list[tuple[str, int, int, str, bool, float]]) -> Model:
    m = Model(kind)
    for what, k, j, naming, b2, dt in steps:
        m.now += dt
        if what == "event":
            ids = tuple(i for j, i in enumerate(UNIVERSE) if k >> j & 1)
            m.sent(
                m.engine.receive(
                    event(f"e{k}-{m.n}", SOURCES[k % 4], *ids), REL, AS_OF, m.now
                ).fired
            )
        elif what == "report" and m.runs:
            # mostly a run that has not reported yet; else another message of any run
            fresh = [r for r in m.runs if r.fate is None]
            pool = fresh if fresh and not b2 else m.runs
            m.report(pool[(k // 2 if b2 else k) % len(pool)], j, naming, b2 and k % 2 == 0)
            m.tick()
        elif what == "alias" and m.pending_alias:
            m.alias(k)
            m.tick()
        elif what == "crash":
            replayed = m.replayed()
            assert _ledger(replayed) == _ledger(m.engine), "replay differs from the live run"
            m.engine = m._new(replayed)
        elif what == "compact":
            m.compact()
        elif what == "redrive":
            m.redrive()
        else:
            m.tick()
    return m


def _drain(m: Model) -> None:
    """Every alias is recorded, every run from now on succeeds, the clock runs on."""
    loop = m.engine.loop
    assert loop is not None
    for _ in range(60):
        while m.pending_alias:
            m.alias(0)
        for r in m.runs:
            if r.fate is None or not r.reported:  # a mixed run's report comes at last
                m.report(r, 0 if r.fate is None else 1, "trigger", False)
        m.now += 3600.0
        m.tick()
        drained = not loop.ledger.open_count and not loop.barrier.held and not m.pending_alias
        if drained and all(r.reported for r in m.runs):
            return
    raise AssertionError("the loop never drains: something is re-run forever")


# a re-dispatch held by the barrier (an upstream still open: its completion is parked for
# a message id never recorded) was deferred in a tick nothing journaled: the replay sent it
# at its due time (787 s), the live loop when the barrier let it go (803 s)
def _events(k: int, n: int = 1, dt: float = 1.0) -> list[tuple[str, int, int, str, bool, float]]:
    """``n`` event steps of the ids ``k`` picks (bits of UNIVERSE), each ``dt`` after the last."""
    return [("event", k, 0, "trigger", False, dt)] * n


_DEFERRED_UNJOURNALED = [
    *_events(0, 10),
    *_events(1),
    *_events(0, dt=650.0),
    *_events(1, 3),
    ("report", 0, 0, "trigger", False, 1.0),
    *_events(1, dt=90.0),
    ("report", 0, 0, "trigger", False, 1.0),
    ("report", 62, 3, "trigger", False, 1.0),
    ("report", 0, 0, "message", False, 45.0),
    ("report", 1, 0, "trigger", False, 1.0),
]


# a run naming only its trigger id fails, then one of its messages says success (another
# message of the run: k odd, b2): while the re-run waits (it closed the trigger, the re-run
# was never sent), once the re-run is out (it closed the trigger, the re-run failed after),
# and for a dead letter (run_retries 0: it closed the dead letter)
_STALE_BEFORE_RERUN = [
    ("event", 1, 0, "trigger", False, 1.0),
    ("tick", 0, 0, "trigger", False, 20.0),
    ("report", 0, 35, "trigger", False, 1.0),
    ("report", 1, 2, "trigger", True, 1.0),
]
_STALE_AFTER_RERUN = [
    *_STALE_BEFORE_RERUN[:3],
    ("tick", 0, 0, "trigger", False, 45.0),
    ("report", 1, 2, "trigger", True, 1.0),
    ("report", 0, 3, "trigger", False, 1.0),
]
# the same, but the re-run succeeds naming only its trigger: the second success naming no
# attempt after one failure closes the trigger (barrier: run_retries 2; retries1: the first
# dead-lettered it, the second closes the dead letter)
_UNATTRIBUTED_ENOUGH = [*_STALE_AFTER_RERUN[:5], ("report", 0, 0, "trigger", False, 1.0)]

# attempt 1 (its message id recorded) times out, attempt 2 runs, attempt 1's partial report
# comes late: an earlier attempt's failure, not counted against attempt 2 (the random
# search does not reach it)
_EARLIER_FAILURE = [
    ("event", 1, 0, "trigger", False, 1.0),
    ("tick", 0, 0, "trigger", False, 20.0),
    ("alias", 0, 0, "trigger", False, 1.0),
    ("tick", 0, 0, "trigger", False, 200.0),
    ("tick", 0, 0, "trigger", False, 200.0),
    ("report", 0, 5, "both", False, 1.0),
    ("report", 0, 0, "both", False, 1.0),
]


# found by the search (2026-12-07): a run naming only its message id, whose id is recorded
# late (the barrier holds the trigger's re-run meanwhile), says success (a change event),
# then partial (x missed); both park; 650 s on, the success is redelivered: the parked pair
# had waited past ORPHAN_TTL_S, both were dropped and the success parked again, so when the
# id was recorded the success alone closed the trigger and x was never processed. Reports
# of missed ids or a failure are no longer dropped for their age (router/ledger_parked.py)
_FAILURE_OUTLIVES_TTL = [
    *_events(1, 6),
    *_events(1, dt=20.0),
    *_events(1),
    ("report", 31, 0, "trigger", False, 1.0),
    *_events(0, dt=20.0),
    ("report", 0, 38, "message", False, 1.0),
    ("report", 1, 0, "trigger", False, 1.0),
    *_events(0, 4),
    *_events(0, dt=650.0),
    ("report", 2, 0, "trigger", True, 1.0),
]


@settings(max_examples=1000)
@given(st.sampled_from(sorted(REGS)), st.lists(step, max_size=60))
@example("barrier", _DEFERRED_UNJOURNALED)
@example("retries1", _STALE_BEFORE_RERUN)
@example("barrier", _STALE_AFTER_RERUN)
@example("retries0", _STALE_BEFORE_RERUN)
@example("retries1", _EARLIER_FAILURE)
@example("barrier", _UNATTRIBUTED_ENOUGH)
@example("retries1", _UNATTRIBUTED_ENOUGH)
@example("barrier", _FAILURE_OUTLIVES_TTL)
def test_closed_means_processed_and_replay_is_the_live_run(kind: str, steps: list[Any]) -> None:
    """A closed trigger's ids were all processed; replay equals live; the loop drains."""
    m = _drive(kind, steps)
    assert _ledger(m.replayed()) == _ledger(m.engine), "replay differs from the live run"
    _drain(m)
    loop = m.engine.loop
    assert loop is not None
    for e in loop.ledger.entries():
        if e.phase == "succeeded":
            missing = m.scope[e.trigger_id] - m.processed.get(e.trigger_id, set())
            assert not missing, f"{e.trigger_id} closed, {sorted(missing)} never processed"
