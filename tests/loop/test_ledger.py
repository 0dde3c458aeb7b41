"""The trigger ledger: its transition table, the docs that print it, and the rules run
through the book (re-runs, timeouts, dead letters, redrive, late completions)."""

from __future__ import annotations

from pathlib import Path

import pytest
from closed_loop_support import D, trig

from scoperouter.router.completion_ref import CompletionRef
from scoperouter.router.ledger_book import LedgerBook
from scoperouter.router.ledger_table import TRANSITIONS, transition_table_markdown
from scoperouter.router.loop_params import LoopParams

ROOT = Path(__file__).resolve().parents[2]


def book(retries: int = 2, timeout: float | None = 100.0) -> LedgerBook:
    return LedgerBook(lambda _p: LoopParams(retries, timeout, None, backoff_base_s=10.0))


def test_docs_print_the_table() -> None:
    """docs/ledger.md embeds the ledger's transition table exactly."""
    text = (ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")
    assert transition_table_markdown() in text


def test_every_open_phase_answers_every_completion() -> None:
    """dispatched and backoff answer success/partial/failed; a closed trigger ignores failures."""
    for ph in ("dispatched", "backoff"):
        for inp in ("success", "partial"):
            assert TRANSITIONS[(ph, inp)].next == "succeeded"  # type: ignore[index]
    assert TRANSITIONS[("succeeded", "failed")].effect == "ignore"


# (script of (time, input), expected phase, attempts, dead letters, re-dispatch times)
CASES = [
    ("success closes", [(5, "success")], "succeeded", 1, 0, []),
    ("failed re-runs after backoff", [(5, "failed"), (15, "tick")], "dispatched", 2, 0, [15]),
    (
        # these completions name no attempt (only the trigger id): after a failure, the
        # re-run's success may be the failed run's -- re-run once more; the second success
        # cannot be (a run sends one): it closes
        "a success naming no attempt after a failure re-runs once, the second closes",
        [(5, "failed"), (15, "tick"), (20, "success"), (40, "tick"), (41, "success")],
        "succeeded",
        3,
        0,
        [15, 40],
    ),
    (
        # two failed runs: the one success may be either's -- run_retries spent, dead letter
        "a success naming no attempt after two failures dead letters",
        [(5, "failed"), (15, "tick"), (16, "failed"), (36, "tick"), (37, "success")],
        "dead",
        3,
        1,
        [15, 36],
    ),
    (
        "failures exhaust run_retries",
        [(5, "failed"), (15, "tick"), (16, "failed"), (36, "tick"), (37, "failed")],
        "dead",
        3,
        1,
        [15, 36],
    ),
    (
        "timeout re-dispatches then dead letters",
        [(100, "tick"), (110, "tick"), (210, "tick"), (230, "tick"), (330, "tick")],
        "dead",
        3,
        1,
        [110, 230],
    ),
    (
        "late success after a timeout closes",
        [(100, "tick"), (105, "success"), (200, "tick")],
        "succeeded",
        1,
        0,
        [],
    ),
    (
        "late success closes a dead letter of timeouts",
        [
            (100, "tick"),
            (110, "tick"),
            (210, "tick"),
            (230, "tick"),
            (330, "tick"),
            (340, "success"),
        ],
        "succeeded",
        3,
        0,
        [110, 230],
    ),
    (
        "a success naming no attempt leaves a dead letter of failures dead",
        [
            (5, "failed"),
            (15, "tick"),
            (16, "failed"),
            (36, "tick"),
            (37, "failed"),
            (50, "success"),
        ],
        "dead",
        3,
        1,
        [15, 36],
    ),
    ("a failure after success is ignored", [(5, "success"), (6, "failed")], "succeeded", 1, 0, []),
]


@pytest.mark.parametrize(
    ("name", "script", "phase", "attempts", "dead", "sent"), CASES, ids=[c[0] for c in CASES]
)
def test_ledger_scripts(
    name: str,
    script: list[tuple[float, str]],
    phase: str,
    attempts: int,
    dead: int,
    sent: list[float],
) -> None:
    """Each script of completions and timer ticks ends in the expected state."""
    b = book()
    b.open(trig(), 0.0)
    times: list[float] = []
    for at, what in script:
        if what == "tick":
            times.extend(r.at for r in b.due(at))
        else:
            # each message its own event id (a redelivery would repeat one)
            done = CompletionRef(outcome=what, trigger_id="t-1", error="boom", event_id=f"ev-{at}")  # type: ignore[arg-type]
            b.complete(done, at)
    e = b.get("t-1")
    assert e is not None
    assert (e.phase, e.attempt, len(b.dead_letters()), times) == (phase, attempts, dead, sent)


def test_redrive_sends_the_same_trigger_id_with_fresh_retries() -> None:
    """A dead letter redriven goes out again with its id; its completion closes it."""
    b = book(retries=0)
    b.open(trig(), 0.0)
    b.complete(CompletionRef(outcome="failed", trigger_id="t-1", error="boom"), 1.0)
    assert [e.trigger_id for e in b.dead_letters()] == ["t-1"]
    (r,) = b.redrive(["t-1"], 50.0)
    assert (r.trigger.trigger_id, r.attempt) == ("t-1", 2)
    assert b.busy("p", D)
    b.complete(CompletionRef(outcome="success", trigger_id="t-1"), 60.0)
    assert b.dead_letters() == () and not b.busy("p", D)


def test_partial_reruns_only_the_missed_ids() -> None:
    """A partial completion naming missed ids re-dispatches the same id for those ids."""
    b = book()
    b.open(trig(), 0.0)
    b.complete(CompletionRef(outcome="partial", trigger_id="t-1", missed=("b", "zz")), 1.0)
    (r,) = b.due(100.0)
    assert r.trigger.trigger_id == "t-1" and r.trigger.entity_ids == ("b",)


def test_partial_of_a_full_date_trigger_reruns_its_date() -> None:
    """A full-date run reporting missed ids is re-run (its whole date, same id), not closed."""
    b = book()
    b.open(trig(ids=None), 0.0)
    b.complete(CompletionRef(outcome="partial", trigger_id="t-1", missed=("b",)), 1.0)
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff"
    (r,) = b.due(100.0)
    assert r.trigger.trigger_id == "t-1" and r.trigger.scope == "date"


@pytest.mark.parametrize("ids", [("a", "b"), None], ids=["entities", "date"])
def test_partial_report_after_the_runs_success_event_reruns_the_missed_ids(
    ids: tuple[str, ...] | None,
) -> None:
    """A run's success event closed the trigger; its own partial report naming missed ids reopens it."""
    b = book()
    b.open(trig(ids=ids), 0.0)
    b.complete(CompletionRef(outcome="success", trigger_id="t-1", event_id="ev-1"), 1.0)
    b.complete(
        CompletionRef(outcome="partial", trigger_id="t-1", missed=("b",), event_id="rep-1"), 2.0
    )
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff" and b.busy("p", D)
    (r,) = b.due(100.0)
    assert r.trigger.trigger_id == "t-1"
    assert r.trigger.entity_ids == (("b",) if ids else None)
    # the same report delivered again changes nothing more
    b.complete(
        CompletionRef(outcome="partial", trigger_id="t-1", missed=("b",), event_id="rep-1"), 101.0
    )
    again = b.get("t-1")
    assert again is not None and again.phase == "dispatched" and again.attempt == 2


@pytest.mark.parametrize("retries", [0, 1])
def test_a_late_report_of_an_earlier_run_reopens_without_a_dead_letter(retries: int) -> None:
    """A closed trigger reopened by a late partial report re-runs the ids; it is never dead-lettered for it."""
    b = book(retries=retries)
    b.open(trig(), 0.0)
    b.complete(
        CompletionRef(outcome="partial", trigger_id="t-1", missed=("b",), event_id="r1"), 1.0
    )
    (rerun,) = b.due(100.0)
    assert rerun.trigger.entity_ids == ("b",)
    b.alias("9002", "t-1", 100.5)  # the re-run's success names its attempt: it closes
    b.complete(
        CompletionRef(outcome="success", trigger_id="t-1", message_id="9002", event_id="r2"),
        101.0,
    )
    closed = b.get("t-1")
    assert closed is not None and closed.phase == "succeeded"
    # another message of run 1, late, naming the same missed id (it says nothing of run 2)
    b.complete(
        CompletionRef(outcome="partial", trigger_id="t-1", missed=("b",), event_id="r1-ev"), 102.0
    )
    e = b.get("t-1")
    assert e is not None and e.phase == "backoff", e.phase


@pytest.mark.parametrize(
    ("ref", "found"),
    [
        (CompletionRef(outcome="success", trigger_id="t-1"), True),
        (CompletionRef(outcome="success", message_id="m-9"), True),  # alias from Pub/Sub
        (CompletionRef(outcome="success", message_id="t-1"), True),  # trigger id echoed
        (CompletionRef(outcome="success", processor="p", day=D), True),  # no id: oldest open
        (CompletionRef(outcome="success", processor="other", day=D), False),
        (CompletionRef(outcome="success", trigger_id="t-unknown"), False),
    ],
)
def test_completion_matching(ref: CompletionRef, found: bool) -> None:
    """A completion names its trigger by id, Pub/Sub alias, or processor and date."""
    b = book()
    b.open(trig(), 0.0)
    b.alias("m-9", "t-1", 0.5)
    entry, _ = b.complete(ref, 1.0)
    assert (entry is not None and entry.phase == "succeeded") is found


def test_snapshot_round_trip_keeps_deadlines() -> None:
    """The ledger restored from its snapshot has the same entries and timers."""
    b = book()
    b.open(trig("t-1"), 0.0)
    b.open(trig("t-2"), 5.0)
    b.complete(CompletionRef(outcome="failed", trigger_id="t-2", error="x"), 6.0)
    b2 = LedgerBook.restore(b.params, b.snapshot())
    assert b2.entries() == b.entries()
    assert b2.next_deadline() == b.next_deadline() == 16.0


@pytest.mark.parametrize("n", [1, 3, 200])
def test_idless_completions_close_the_oldest_open_trigger_first(n: int) -> None:
    """Completions naming only processor and date close one key's open triggers oldest
    first, whichever closed in between by id (a list kept by hand as the oracle)."""
    b = book()
    oracle = [f"t-{i}" for i in range(n)]
    for i, tid in enumerate(oracle):
        b.open(trig(tid), float(i))
    assert b.open_count == n
    if n > 2:  # one in the middle closed by its id first
        b.complete(CompletionRef(outcome="success", trigger_id=oracle[1]), float(n))
        oracle.remove(oracle[1])
    closed = []
    while True:
        entry, _ = b.complete(CompletionRef(outcome="success", processor="p", day=D), 0.0)
        if entry is None:
            break
        closed.append(entry.trigger.trigger_id)
    assert closed == oracle
    assert b.open_count == 0 and not b.busy("p", D)
